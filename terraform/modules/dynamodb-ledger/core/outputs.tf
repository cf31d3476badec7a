output "tables" {
  description = "Table definitions keyed by their tables.json key: name, expected ARN, hash_key, range_key, ttl_attribute, key attributes, billing mode and capacity."
  value       = local.tables
}

output "table_names" {
  description = "Table names keyed by their tables.json key."
  value       = { for k, t in local.tables : k => t.name }
}

output "runtime_dynamodb_actions" {
  description = "The DynamoDB actions the runtime uses, from tables.json."
  value       = local.contract.runtime_actions
}

output "runtime_kms_actions" {
  description = "The KMS actions the runtime needs on the table key (through DynamoDB), from tables.json."
  value       = local.contract.runtime_kms_actions
}

output "kms_alias" {
  description = "Alias of the KMS key the module creates when none is given."
  value       = "alias/${var.table_prefix}ledger"
}

output "kms_key_policy" {
  description = "Policy document (object) of the KMS key the module creates."
  value       = local.kms_key_policy
}

output "kms_key_policy_json" {
  description = "The same policy as JSON."
  value       = jsonencode(local.kms_key_policy)
}

output "tags" {
  description = "Tags for every resource."
  value       = local.tags
}
