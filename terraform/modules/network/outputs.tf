output "vpc_id" {
  description = "ID of the VPC (given or created)."
  value       = local.vpc_id
}

output "private_subnet_ids" {
  description = "IDs of the created private subnets, in the order of availability_zones (empty with vpc_id)."
  value       = [for az in var.availability_zones : aws_subnet.private[az].id if module.core.create_vpc]
}

output "route_table_ids" {
  description = "Route tables that route DynamoDB through the endpoint."
  value       = local.route_table_ids
}

output "vpc_endpoint_id" {
  description = "ID of the DynamoDB gateway endpoint (for runtime-iam's source_vpce_ids)."
  value       = aws_vpc_endpoint.dynamodb.id
}

output "dynamodb_prefix_list_id" {
  description = "Prefix list of DynamoDB's addresses, for security group egress rules (TCP 443) of the runtime's nodes or pods."
  value       = aws_vpc_endpoint.dynamodb.prefix_list_id
}

output "endpoint_policy_json" {
  description = "The endpoint policy (for review)."
  value       = module.core.endpoint_policy_json
}
