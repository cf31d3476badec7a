# Types, defaults and descriptions of the module's inputs. Every input is passed to ./core,
# which holds the validation rules (so they are tested offline by `terraform test` there).

variable "name" {
  description = "Name for the created resources (Name tags), e.g. \"tollgate-prod\"."
  type        = string
  default     = "tollgate"
  nullable    = false
}

variable "vpc_id" {
  description = "ID of the existing VPC (your EKS cluster's) to add the DynamoDB gateway endpoint to. Null creates a new VPC with private subnets only."
  type        = string
  default     = null
}

variable "route_table_ids" {
  description = "Route tables of the runtime's subnets in the existing VPC. Required with vpc_id, empty when a new VPC is created."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the new VPC (/16 to /24). Ignored with vpc_id."
  type        = string
  default     = "10.42.0.0/16"
  nullable    = false
}

variable "availability_zones" {
  description = "Availability zones of the new VPC's private subnets (at least 2). Empty with vpc_id."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "subnet_newbits" {
  description = "Bits added to vpc_cidr's prefix for each private subnet (4 turns a /16 into /20 subnets)."
  type        = number
  default     = 4
  nullable    = false
}

variable "table_arns" {
  description = "ARNs of the ledger tables (dynamodb-ledger's table_arns, as a list); the endpoint policy allows nothing else."
  type        = list(string)
  nullable    = false
}

variable "flow_log_destination_arn" {
  description = "S3 bucket ARN (optionally with a prefix) for the new VPC's flow logs. Null sends none. Ignored with vpc_id."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource (merged over tollgate.dev/module)."
  type        = map(string)
  default     = {}
  nullable    = false
}
