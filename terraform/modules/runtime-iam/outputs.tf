output "role_arn" {
  description = "ARN of the runtime's IAM role."
  value       = aws_iam_role.runtime.arn
}

output "role_name" {
  description = "Name of the runtime's IAM role."
  value       = aws_iam_role.runtime.name
}

output "identity_mode" {
  description = "pod_identity or irsa, as given."
  value       = var.identity_mode
}

output "service_account_annotations" {
  description = "Annotations for the runtime's service account: eks.amazonaws.com/role-arn with irsa, empty with pod_identity."
  value       = module.core.service_account_annotations
}

output "pod_identity_association_id" {
  description = "ID of the EKS Pod Identity association (pod_identity), null with irsa."
  value       = one(aws_eks_pod_identity_association.runtime[*].association_id)
}

output "permissions_policy_json" {
  description = "The role's permissions policy (for review: the runtime's DynamoDB actions on the tables, KMS through DynamoDB only)."
  value       = module.core.permissions_policy_json
}
