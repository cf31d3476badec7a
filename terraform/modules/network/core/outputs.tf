output "create_vpc" {
  description = "Whether the parent module creates a VPC."
  value       = local.create_vpc
}

output "private_subnets" {
  description = "Private subnets of the new VPC keyed by availability zone: cidr and name (empty with vpc_id)."
  value       = local.create_vpc ? local.private_subnets : {}
}

output "endpoint_policy" {
  description = "Policy of the DynamoDB gateway endpoint, as an object."
  value       = local.endpoint_policy
}

output "endpoint_policy_json" {
  description = "The endpoint policy as JSON."
  value       = jsonencode(local.endpoint_policy)
}

output "tags" {
  description = "Tags for every resource."
  value       = local.tags
}
