output "role_arn" {
  description = "ARN the role will have (arn:PARTITION:iam::ACCOUNT:role/PATH/NAME)."
  value       = "arn:${var.partition}:iam::${var.account_id}:role${var.role_path}${var.role_name}"
}

output "trust_policy" {
  description = "Trust (assume role) policy document, as an object."
  value       = local.trust_policy
}

output "trust_policy_json" {
  description = "The trust policy as JSON."
  value       = jsonencode(local.trust_policy)
}

output "permissions_policy" {
  description = "Permissions policy document of the role, as an object."
  value       = local.permissions_policy
}

output "permissions_policy_json" {
  description = "The permissions policy as JSON."
  value       = jsonencode(local.permissions_policy)
}

output "cluster_arn" {
  description = "ARN of the EKS cluster the trust policy accepts (pod_identity)."
  value       = local.cluster_arn
}

output "create_pod_identity_association" {
  description = "Whether the parent module creates an EKS Pod Identity association."
  value       = var.identity_mode == "pod_identity"
}

output "service_account_annotations" {
  description = "Annotations the runtime's service account needs: eks.amazonaws.com/role-arn with irsa, none with pod_identity."
  value       = tomap(local.service_account_annotations)
}

output "tags" {
  description = "Tags for every resource."
  value       = local.tags
}
