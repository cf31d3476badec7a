variables {
  role_name    = "tollgate-runtime"
  cluster_name = "prod"
  table_arns   = ["arn:aws:dynamodb:eu-west-1:123456789012:table/tollgate-journal"]
  kms_key_arn  = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  account_id   = "123456789012"
  partition    = "aws"
  region       = "eu-west-1"
}

run "role_name_at_most_64_characters" {
  command = plan
  variables { role_name = "r2345678901234567890123456789012345678901234567890123456789012345" }
  expect_failures = [var.role_name]
}

run "role_name_charset" {
  command = plan
  variables { role_name = "tollgate runtime" }
  expect_failures = [var.role_name]
}

run "role_path_slashes" {
  command = plan
  variables { role_path = "tollgate" }
  expect_failures = [var.role_path]
}

run "permissions_boundary_is_a_policy_arn" {
  command = plan
  variables { permissions_boundary_arn = "arn:aws:iam::123456789012:role/boundary" }
  expect_failures = [var.permissions_boundary_arn]
}

run "identity_mode_is_an_enum" {
  command = plan
  variables { identity_mode = "kiam" }
  expect_failures = [var.identity_mode]
}

run "irsa_needs_oidc_provider" {
  command = plan
  variables { identity_mode = "irsa" }
  expect_failures = [var.oidc_provider_arn]
}

run "irsa_rejects_malformed_oidc_provider" {
  command = plan
  variables {
    identity_mode     = "irsa"
    oidc_provider_arn = "arn:aws:iam::123456789012:role/oidc"
  }
  expect_failures = [var.oidc_provider_arn]
}

run "cluster_name_charset" {
  command = plan
  variables { cluster_name = "prod/eu" }
  expect_failures = [var.cluster_name]
}

run "namespace_is_a_dns_label" {
  command = plan
  variables { namespace = "Tollgate" }
  expect_failures = [var.namespace]
}

run "service_account_is_a_dns_subdomain" {
  command = plan
  variables { service_account = "tollgate_runtime" }
  expect_failures = [var.service_account]
}

run "table_arns_reject_wildcards" {
  command = plan
  variables { table_arns = ["arn:aws:dynamodb:eu-west-1:123456789012:table/*"] }
  expect_failures = [var.table_arns]
}

run "table_arns_reject_index_arns" {
  command = plan
  variables { table_arns = ["arn:aws:dynamodb:eu-west-1:123456789012:table/tollgate-journal/index/by-seq"] }
  expect_failures = [var.table_arns]
}

run "table_arns_not_empty" {
  command = plan
  variables { table_arns = [] }
  expect_failures = [var.table_arns]
}

run "kms_key_arn_rejects_wildcard" {
  command = plan
  variables { kms_key_arn = "*" }
  expect_failures = [var.kms_key_arn]
}

run "source_vpce_ids_format" {
  command = plan
  variables { source_vpce_ids = ["vpc-0123456789abcdef0"] }
  expect_failures = [var.source_vpce_ids]
}

run "tags_reject_aws_prefix" {
  command = plan
  variables { tags = { "AWS:owner" = "x" } }
  expect_failures = [var.tags]
}
