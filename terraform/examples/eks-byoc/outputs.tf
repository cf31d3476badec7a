output "helm_values" {
  description = "Helm values for charts/tollgate: the TollgateRuntime (name tollgate-runtime, DynamoDB store settings, and the IRSA annotation of its ServiceAccount when identity_mode is irsa). Use: terraform output -raw helm_values > tollgate-aws.yaml"
  value       = module.helm_values.yaml
}

output "table_names" {
  description = "The ledger tables keyed by their tables.json key."
  value       = module.ledger.table_names
}

output "kms_key_arn" {
  description = "The KMS key that encrypts the tables."
  value       = module.ledger.kms_key_arn
}

output "role_arn" {
  description = "The runtime's IAM role."
  value       = module.runtime_iam.role_arn
}

output "pod_identity_association_id" {
  description = "The EKS Pod Identity association of namespace/tollgate-runtime (pod_identity), null with irsa."
  value       = module.runtime_iam.pod_identity_association_id
}

output "vpc_endpoint_id" {
  description = "The DynamoDB gateway endpoint."
  value       = module.network.vpc_endpoint_id
}

output "dynamodb_prefix_list_id" {
  description = "DynamoDB's prefix list, for security group egress rules (TCP 443) if your node or pod security groups restrict egress."
  value       = module.network.dynamodb_prefix_list_id
}
