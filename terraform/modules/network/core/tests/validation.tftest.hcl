variables {
  table_arns         = ["arn:aws:dynamodb:eu-west-1:123456789012:table/tollgate-journal"]
  account_id         = "123456789012"
  availability_zones = ["eu-west-1a", "eu-west-1b"]
}

run "name_charset" {
  command = plan
  variables { name = "tollgate prod" }
  expect_failures = [var.name]
}

run "vpc_id_format" {
  command = plan
  variables {
    vpc_id             = "subnet-0123456789abcdef0"
    route_table_ids    = ["rtb-0123456789abcdef0"]
    availability_zones = []
  }
  expect_failures = [var.vpc_id]
}

run "existing_vpc_needs_route_tables" {
  command = plan
  variables {
    vpc_id             = "vpc-0123456789abcdef0"
    availability_zones = []
  }
  expect_failures = [var.route_table_ids]
}

run "new_vpc_takes_no_route_tables" {
  command = plan
  variables { route_table_ids = ["rtb-0123456789abcdef0"] }
  expect_failures = [var.route_table_ids]
}

run "route_table_id_format" {
  command = plan
  variables {
    vpc_id             = "vpc-0123456789abcdef0"
    route_table_ids    = ["rt-01"]
    availability_zones = []
  }
  expect_failures = [var.route_table_ids]
}

run "route_tables_distinct" {
  command = plan
  variables {
    vpc_id             = "vpc-0123456789abcdef0"
    route_table_ids    = ["rtb-0123456789abcdef0", "rtb-0123456789abcdef0"]
    availability_zones = []
  }
  expect_failures = [var.route_table_ids]
}

run "new_vpc_needs_two_zones" {
  command = plan
  variables { availability_zones = ["eu-west-1a"] }
  expect_failures = [var.availability_zones]
}

run "zones_not_with_existing_vpc" {
  command = plan
  variables {
    vpc_id          = "vpc-0123456789abcdef0"
    route_table_ids = ["rtb-0123456789abcdef0"]
  }
  expect_failures = [var.availability_zones]
}

run "zone_format" {
  command = plan
  variables { availability_zones = ["eu-west-1", "eu-west-1b"] }
  expect_failures = [var.availability_zones]
}

run "vpc_cidr_prefix_16_to_24" {
  command = plan
  variables { vpc_cidr = "10.0.0.0/8" }
  expect_failures = [var.vpc_cidr]
}

run "vpc_cidr_is_a_network_address" {
  command = plan
  variables { vpc_cidr = "10.42.1.0/16" }
  expect_failures = [var.vpc_cidr]
}

run "vpc_cidr_is_ipv4" {
  command = plan
  variables { vpc_cidr = "fd00::/56" }
  expect_failures = [var.vpc_cidr]
}

run "subnet_newbits_range" {
  command = plan
  variables { subnet_newbits = 0 }
  expect_failures = [var.subnet_newbits]
}

run "table_arns_reject_wildcards" {
  command = plan
  variables { table_arns = ["arn:aws:dynamodb:eu-west-1:123456789012:table/tollgate-*"] }
  expect_failures = [var.table_arns]
}

run "flow_log_destination_is_an_s3_arn" {
  command = plan
  variables { flow_log_destination_arn = "arn:aws:logs:eu-west-1:123456789012:log-group:vpc" }
  expect_failures = [var.flow_log_destination_arn]
}

run "flow_log_destination_accepts_bucket_prefix" {
  command = plan
  variables { flow_log_destination_arn = "arn:aws:s3:::acme-central-logs/vpc/tollgate" }
}
