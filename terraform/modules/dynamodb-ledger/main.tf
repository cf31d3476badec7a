data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

# Validation and everything derived from tables.json live in the provider-less core.
module "core" {
  source = "./core"

  table_prefix                 = var.table_prefix
  billing_mode                 = var.billing_mode
  provisioned_capacity         = var.provisioned_capacity
  deletion_protection          = var.deletion_protection
  point_in_time_recovery_days  = var.point_in_time_recovery_days
  kms_key_arn                  = var.kms_key_arn
  kms_key_deletion_window_days = var.kms_key_deletion_window_days
  kms_key_admin_arns           = var.kms_key_admin_arns
  tags                         = var.tags

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  dns_suffix = data.aws_partition.current.dns_suffix
}

resource "aws_kms_key" "ledger" {
  count = var.kms_key_arn == "" ? 1 : 0

  description             = "Tollgate ledger tables ${var.table_prefix}*"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_days
  policy                  = module.core.kms_key_policy_json
  tags                    = module.core.tags
}

resource "aws_kms_alias" "ledger" {
  count = var.kms_key_arn == "" ? 1 : 0

  name          = module.core.kms_alias
  target_key_id = aws_kms_key.ledger[0].key_id
}

locals {
  kms_key_arn = var.kms_key_arn == "" ? aws_kms_key.ledger[0].arn : var.kms_key_arn
}

resource "aws_dynamodb_table" "ledger" {
  #checkov:skip=CKV2_AWS_16:On-demand (PAY_PER_REQUEST) is the default and scales by itself. PROVISIONED is an explicit opt-in with per-table capacity the operator sizes; autoscaling it is not in this module yet (see README).
  for_each = module.core.tables

  name           = each.value.name
  billing_mode   = each.value.billing_mode
  read_capacity  = each.value.read_capacity
  write_capacity = each.value.write_capacity
  hash_key       = each.value.hash_key.name
  range_key      = try(each.value.range_key.name, null)

  dynamic "attribute" {
    for_each = each.value.attributes
    content {
      name = attribute.value.name
      type = attribute.value.type
    }
  }

  # Only the idempotency records expire; journal entries never do (expiry of credits is an
  # explicit ledger entry, never a TTL deletion).
  dynamic "ttl" {
    for_each = each.value.ttl_attribute == null ? [] : [each.value.ttl_attribute]
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled                 = true
    recovery_period_in_days = var.point_in_time_recovery_days
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }

  deletion_protection_enabled = var.deletion_protection

  tags = merge(module.core.tags, { "tollgate.dev/table" = each.key })
}
