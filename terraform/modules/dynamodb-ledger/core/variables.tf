variable "table_prefix" {
  description = "Prefix of every table name: table name = table_prefix + suffix from tables.json (e.g. \"tollgate-prod-\" gives \"tollgate-prod-journal\"). The runtime takes the same prefix (TollgateRuntime spec.store.dynamodb.tablePrefix)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", var.table_prefix))
    error_message = "table_prefix must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-', starting with a letter or digit (it also names the KMS alias, which allows no '.')."
  }
}

variable "billing_mode" {
  description = "DynamoDB capacity mode of every table: PAY_PER_REQUEST (on-demand, the default) or PROVISIONED (then set provisioned_capacity for every table)."
  type        = string
  default     = "PAY_PER_REQUEST"

  validation {
    condition     = contains(["PAY_PER_REQUEST", "PROVISIONED"], var.billing_mode)
    error_message = "billing_mode must be PAY_PER_REQUEST or PROVISIONED."
  }
}

variable "provisioned_capacity" {
  description = "Read and write capacity units per table, keyed by the table's key in tables.json (journal, checkpoints, idempotency, leases). Required for every table when billing_mode is PROVISIONED, and must be empty otherwise."
  type = map(object({
    read_units  = number
    write_units = number
  }))
  default  = {}
  nullable = false

  validation {
    condition = alltrue([
      for t in values(var.provisioned_capacity) :
      t.read_units >= 1 && t.write_units >= 1 && floor(t.read_units) == t.read_units && floor(t.write_units) == t.write_units
    ])
    error_message = "provisioned_capacity read_units and write_units must be whole numbers >= 1."
  }

  validation {
    condition = (
      var.billing_mode == "PROVISIONED"
      ? sort(keys(var.provisioned_capacity)) == sort(keys(jsondecode(file("${path.module}/../tables.json")).tables))
      : length(var.provisioned_capacity) == 0
    )
    error_message = "provisioned_capacity needs exactly one entry per table (journal, checkpoints, idempotency, leases) when billing_mode is PROVISIONED, and must be empty when it is PAY_PER_REQUEST."
  }
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection on every table. Keep it on: the tables are the system of record of the ledger. Turn it off (and apply) only right before a deliberate destroy."
  type        = bool
  default     = true
  nullable    = false
}

variable "point_in_time_recovery_days" {
  description = "How many days back point-in-time recovery can restore a table (1-35). Point-in-time recovery itself is always on."
  type        = number
  default     = 35
  nullable    = false

  validation {
    condition     = var.point_in_time_recovery_days >= 1 && var.point_in_time_recovery_days <= 35 && floor(var.point_in_time_recovery_days) == var.point_in_time_recovery_days
    error_message = "point_in_time_recovery_days must be a whole number from 1 to 35."
  }
}

variable "kms_key_arn" {
  description = "ARN of an existing customer-managed KMS key to encrypt the tables with. Empty (the default) creates a dedicated key with rotation on. A key you bring must allow use through DynamoDB (kms:ViaService) to the runtime role."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.kms_key_arn == "" || can(regex("^arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:key/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID), not an alias and not a wildcard."
  }
}

variable "kms_key_deletion_window_days" {
  description = "Waiting period (7-30 days) before a created KMS key is deleted after the module stops managing it."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.kms_key_deletion_window_days >= 7 && var.kms_key_deletion_window_days <= 30 && floor(var.kms_key_deletion_window_days) == var.kms_key_deletion_window_days
    error_message = "kms_key_deletion_window_days must be a whole number from 7 to 30."
  }
}

variable "kms_key_admin_arns" {
  description = "IAM principals (role or user ARNs) that administer the created KMS key (rotate, tag, schedule deletion), without using it for data; include the principal that runs Terraform, or KMS refuses the policy. Empty (the default) delegates administration to IAM policies in this account (the account root principal), as AWS's default key policy does."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for a in var.kms_key_admin_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$", a))])
    error_message = "kms_key_admin_arns must hold IAM role or user ARNs (arn:aws:iam::ACCOUNT:role/NAME), without wildcards."
  }
}

variable "account_id" {
  description = "AWS account that owns the tables (the parent module passes aws_caller_identity)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov, ...); the parent module passes aws_partition."
  type        = string

  validation {
    condition     = can(regex("^aws(-[a-z]+)*$", var.partition))
    error_message = "partition must be an AWS partition name such as aws, aws-cn or aws-us-gov."
  }
}

variable "region" {
  description = "AWS region of the tables, e.g. eu-west-1 (the parent module passes aws_region)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "dns_suffix" {
  description = "DNS suffix of the partition (amazonaws.com, amazonaws.com.cn, ...); names the DynamoDB service in kms:ViaService."
  type        = string
  default     = "amazonaws.com"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9]+(\\.[a-z0-9]+)+$", var.dns_suffix))
    error_message = "dns_suffix must be a DNS domain such as amazonaws.com."
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
