# Every validation rule of the module rejects what it should.

variables {
  table_prefix = "tollgate-"
  account_id   = "123456789012"
  partition    = "aws"
  region       = "us-east-1"
}

run "prefix_rejects_dot" {
  command = plan
  variables { table_prefix = "tollgate.prod-" }
  expect_failures = [var.table_prefix]
}

run "prefix_rejects_empty" {
  command = plan
  variables { table_prefix = "" }
  expect_failures = [var.table_prefix]
}

run "prefix_rejects_leading_dash" {
  command = plan
  variables { table_prefix = "-tollgate" }
  expect_failures = [var.table_prefix]
}

run "prefix_rejects_over_64_characters" {
  command = plan
  variables { table_prefix = "a234567890123456789012345678901234567890123456789012345678901234x" }
  expect_failures = [var.table_prefix]
}

run "prefix_accepts_64_characters" {
  command = plan
  variables { table_prefix = "a234567890123456789012345678901234567890123456789012345678901234" }
}

run "billing_mode_is_an_enum" {
  command = plan
  variables { billing_mode = "ON_DEMAND" }
  expect_failures = [var.billing_mode]
}

run "provisioned_needs_capacity_for_every_table" {
  command = plan
  variables {
    billing_mode         = "PROVISIONED"
    provisioned_capacity = { journal = { read_units = 5, write_units = 5 } }
  }
  expect_failures = [var.provisioned_capacity]
}

run "capacity_only_with_provisioned" {
  command = plan
  variables {
    provisioned_capacity = {
      journal     = { read_units = 5, write_units = 5 }
      checkpoints = { read_units = 5, write_units = 5 }
      idempotency = { read_units = 5, write_units = 5 }
      leases      = { read_units = 5, write_units = 5 }
    }
  }
  expect_failures = [var.provisioned_capacity]
}

run "capacity_must_be_positive_whole_numbers" {
  command = plan
  variables {
    billing_mode = "PROVISIONED"
    provisioned_capacity = {
      journal     = { read_units = 0, write_units = 5 }
      checkpoints = { read_units = 5, write_units = 2.5 }
      idempotency = { read_units = 5, write_units = 5 }
      leases      = { read_units = 5, write_units = 5 }
    }
  }
  expect_failures = [var.provisioned_capacity]
}

run "pitr_window_is_1_to_35_days" {
  command = plan
  variables { point_in_time_recovery_days = 36 }
  expect_failures = [var.point_in_time_recovery_days]
}

run "kms_key_arn_rejects_alias" {
  command = plan
  variables { kms_key_arn = "arn:aws:kms:us-east-1:123456789012:alias/tollgate" }
  expect_failures = [var.kms_key_arn]
}

run "kms_key_arn_rejects_wildcard" {
  command = plan
  variables { kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/*" }
  expect_failures = [var.kms_key_arn]
}

run "kms_key_arn_accepts_key_id" {
  command = plan
  variables { kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" }
}

run "kms_key_arn_accepts_multi_region_key" {
  command = plan
  variables { kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab" }
}

run "deletion_window_is_7_to_30_days" {
  command = plan
  variables { kms_key_deletion_window_days = 3 }
  expect_failures = [var.kms_key_deletion_window_days]
}

run "key_admins_reject_wildcards" {
  command = plan
  variables { kms_key_admin_arns = ["arn:aws:iam::123456789012:role/*"] }
  expect_failures = [var.kms_key_admin_arns]
}

run "account_id_is_12_digits" {
  command = plan
  variables { account_id = "12345" }
  expect_failures = [var.account_id]
}

run "region_format" {
  command = plan
  variables { region = "Europe" }
  expect_failures = [var.region]
}

run "partition_format" {
  command = plan
  variables { partition = "azure" }
  expect_failures = [var.partition]
}

run "tags_reject_aws_prefix" {
  command = plan
  variables { tags = { "aws:cloudformation:stack-name" = "x" } }
  expect_failures = [var.tags]
}

run "kms_key_arn_empty_means_create" {
  command = plan
  variables { kms_key_arn = "" }
}
