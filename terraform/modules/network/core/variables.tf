variable "name" {
  description = "Name for the created resources (Name tags), e.g. \"tollgate-prod\"."
  type        = string
  default     = "tollgate"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", var.name))
    error_message = "name must be 1-63 characters of A-Z, a-z, 0-9, '_', '.' and '-', starting with a letter or digit."
  }
}

variable "vpc_id" {
  description = "ID of the existing VPC (your EKS cluster's) to add the DynamoDB gateway endpoint to. Null creates a new VPC with private subnets only (see availability_zones)."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must be a VPC ID (vpc-0123456789abcdef0) or null."
  }
}

variable "route_table_ids" {
  description = "Route tables of the runtime's subnets in the existing VPC; the endpoint adds a DynamoDB route to each. Required with vpc_id, and must be empty when a new VPC is created (its route tables are created)."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for id in var.route_table_ids : can(regex("^rtb-[0-9a-f]{8,17}$", id))]) && length(distinct(var.route_table_ids)) == length(var.route_table_ids)
    error_message = "route_table_ids must hold distinct route table IDs (rtb-0123456789abcdef0)."
  }

  validation {
    condition     = var.vpc_id == null ? length(var.route_table_ids) == 0 : length(var.route_table_ids) > 0
    error_message = "route_table_ids must list the route tables of the runtime's subnets when vpc_id is set, and be empty when a new VPC is created."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the new VPC (/16 to /24). Ignored with vpc_id."
  type        = string
  default     = "10.42.0.0/16"
  nullable    = false

  validation {
    condition = (
      can(cidrhost(var.vpc_cidr, 0)) &&
      can(regex("^[0-9.]+/(1[6-9]|2[0-4])$", var.vpc_cidr)) &&
      try(cidrhost(var.vpc_cidr, 0) == split("/", var.vpc_cidr)[0], false)
    )
    error_message = "vpc_cidr must be an IPv4 network address with a prefix from /16 to /24, e.g. 10.42.0.0/16."
  }
}

variable "availability_zones" {
  description = "Availability zones of the new VPC's private subnets, one subnet each (at least 2, e.g. [\"eu-west-1a\", \"eu-west-1b\", \"eu-west-1c\"]). Must be empty with vpc_id."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for az in var.availability_zones : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$", az))]) && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must hold distinct zone names such as eu-west-1a."
  }

  validation {
    condition     = var.vpc_id == null ? length(var.availability_zones) >= 2 : length(var.availability_zones) == 0
    error_message = "availability_zones needs at least 2 zones when a new VPC is created (vpc_id null), and must be empty with vpc_id."
  }
}

variable "subnet_newbits" {
  description = "Bits added to vpc_cidr's prefix for each private subnet (4 turns a /16 into /20 subnets)."
  type        = number
  default     = 4
  nullable    = false

  validation {
    condition     = var.subnet_newbits >= 1 && var.subnet_newbits <= 8 && floor(var.subnet_newbits) == var.subnet_newbits
    error_message = "subnet_newbits must be a whole number from 1 to 8."
  }
}

variable "table_arns" {
  description = "ARNs of the ledger tables; the endpoint policy allows the runtime's actions on these and nothing else."
  type        = list(string)
  nullable    = false

  validation {
    condition = length(var.table_arns) > 0 && alltrue([
      for a in var.table_arns : can(regex("^arn:aws[a-z-]*:dynamodb:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:table/[A-Za-z0-9_.-]{3,255}$", a))
    ])
    error_message = "table_arns must be a non-empty list of DynamoDB table ARNs, without wildcards."
  }
}

variable "flow_log_destination_arn" {
  description = "ARN of an S3 bucket (or a prefix in one) that receives the new VPC's flow logs, e.g. your organisation's central log bucket. Null sends none. Ignored with vpc_id."
  type        = string
  default     = null

  validation {
    condition     = var.flow_log_destination_arn == null || can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", var.flow_log_destination_arn))
    error_message = "flow_log_destination_arn must be an S3 bucket ARN (arn:aws:s3:::BUCKET[/PREFIX])."
  }
}

variable "account_id" {
  description = "AWS account of the tables (the parent module passes aws_caller_identity)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "tags" {
  description = "Tags for every resource, merged over the module's own tollgate.dev/* tags."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for k, v in var.tags :
      length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")
    ])
    error_message = "tags keys must be 1-128 characters and not start with \"aws:\"; values at most 256 characters."
  }
}
