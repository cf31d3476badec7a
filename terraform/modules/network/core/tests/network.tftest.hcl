variables {
  table_arns = [
    "arn:aws:dynamodb:eu-west-1:123456789012:table/tollgate-prod-journal",
    "arn:aws:dynamodb:eu-west-1:123456789012:table/tollgate-prod-leases",
  ]
  account_id = "123456789012"
}

run "existing_vpc_creates_no_subnets" {
  command = plan

  variables {
    vpc_id          = "vpc-0123456789abcdef0"
    route_table_ids = ["rtb-0123456789abcdef0", "rtb-0123456789abcdef1"]
  }

  assert {
    condition     = !output.create_vpc && length(output.private_subnets) == 0
    error_message = "with vpc_id nothing but the endpoint is created"
  }
}

run "new_vpc_has_one_private_subnet_per_zone" {
  command = plan

  variables {
    name               = "tollgate-prod"
    availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  }

  assert {
    condition     = output.create_vpc
    error_message = "without vpc_id a VPC is created"
  }

  assert {
    condition = jsonencode({ for az, s in output.private_subnets : az => s.cidr }) == jsonencode({
      "eu-west-1a" = "10.42.0.0/20"
      "eu-west-1b" = "10.42.16.0/20"
      "eu-west-1c" = "10.42.32.0/20"
    })
    error_message = "unexpected subnet layout ${jsonencode(output.private_subnets)}"
  }

  assert {
    condition     = output.private_subnets["eu-west-1b"].name == "tollgate-prod-private-eu-west-1b"
    error_message = "unexpected subnet name"
  }
}

run "endpoint_policy_allows_only_runtime_actions_on_the_tables" {
  command = plan

  variables {
    vpc_id          = "vpc-0123456789abcdef0"
    route_table_ids = ["rtb-0123456789abcdef0"]
  }

  assert {
    condition     = length(output.endpoint_policy.Statement) == 1 && output.endpoint_policy.Statement[0].Effect == "Allow"
    error_message = "one allow statement"
  }

  assert {
    condition     = output.endpoint_policy.Statement[0].Action == sort(jsondecode(file("../../dynamodb-ledger/tables.json")).runtime_actions)
    error_message = "endpoint actions must be tables.json's runtime_actions"
  }

  assert {
    condition     = output.endpoint_policy.Statement[0].Resource == sort(var.table_arns)
    error_message = "endpoint resources must be exactly the tables"
  }

  assert {
    condition = alltrue([
      for v in concat(output.endpoint_policy.Statement[0].Action, output.endpoint_policy.Statement[0].Resource) :
      length(regexall("[*?]", v)) == 0
    ])
    error_message = "no wildcard action or resource in the endpoint policy"
  }

  assert {
    condition     = output.endpoint_policy.Statement[0].Condition.StringEquals["aws:PrincipalAccount"] == "123456789012"
    error_message = "only principals of this account may use the endpoint"
  }
}
