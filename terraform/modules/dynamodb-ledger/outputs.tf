output "table_prefix" {
  description = "The table prefix, for the runtime's spec.store.dynamodb.tablePrefix."
  value       = var.table_prefix
}

output "region" {
  description = "Region of the tables, for the runtime's spec.store.dynamodb.region."
  value       = data.aws_region.current.region
}

output "tables" {
  description = "The tables keyed by their tables.json key: name, arn, hash_key, range_key and ttl_attribute."
  value = {
    for k, t in module.core.tables : k => {
      name          = aws_dynamodb_table.ledger[k].name
      arn           = aws_dynamodb_table.ledger[k].arn
      hash_key      = t.hash_key
      range_key     = t.range_key
      ttl_attribute = t.ttl_attribute
    }
  }
}

output "table_names" {
  description = "Table names keyed by their tables.json key."
  value       = { for k, t in aws_dynamodb_table.ledger : k => t.name }
}

output "table_arns" {
  description = "Table ARNs keyed by their tables.json key (for runtime-iam and network)."
  value       = { for k, t in aws_dynamodb_table.ledger : k => t.arn }
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the tables (created or given)."
  value       = local.kms_key_arn
}

output "kms_alias" {
  description = "Alias of the created KMS key, null when a key was given."
  value       = var.kms_key_arn == "" ? aws_kms_alias.ledger[0].name : null
}
