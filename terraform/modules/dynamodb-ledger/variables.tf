# Types, defaults and descriptions of the module's inputs. Every input is passed to ./core,
# which holds the validation rules (so they are tested offline by `terraform test` there).

variable "table_prefix" {
  description = "Prefix of every table name: table name = table_prefix + suffix from tables.json (e.g. \"tollgate-prod-\" gives \"tollgate-prod-journal\"). 1-64 characters of A-Z, a-z, 0-9, '_' and '-'. The runtime takes the same prefix (TollgateRuntime spec.store.dynamodb.tablePrefix)."
  type        = string
}

variable "billing_mode" {
  description = "DynamoDB capacity mode of every table: PAY_PER_REQUEST (on-demand) or PROVISIONED (then set provisioned_capacity for every table)."
  type        = string
  default     = "PAY_PER_REQUEST"
}

variable "provisioned_capacity" {
  description = "Read and write capacity units per table, keyed by the table's key in tables.json (journal, checkpoints, idempotency, leases). Required for every table when billing_mode is PROVISIONED, empty otherwise."
  type = map(object({
    read_units  = number
    write_units = number
  }))
  default  = {}
  nullable = false
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection on every table. Turn it off (and apply) only right before a deliberate destroy."
  type        = bool
  default     = true
  nullable    = false
}

variable "point_in_time_recovery_days" {
  description = "How many days back point-in-time recovery can restore a table (1-35). Point-in-time recovery itself is always on."
  type        = number
  default     = 35
  nullable    = false
}

# Empty rather than null for "create one", so that static analysis (checkov) evaluates the
# key this module creates instead of dropping it as count = 0.
variable "kms_key_arn" {
  description = "ARN of an existing customer-managed KMS key for the tables. Empty (the default) creates a dedicated key (rotation on, policy limited to use through DynamoDB)."
  type        = string
  default     = ""
  nullable    = false
}

variable "kms_key_deletion_window_days" {
  description = "Waiting period (7-30 days) before a created KMS key is deleted."
  type        = number
  default     = 30
  nullable    = false
}

variable "kms_key_admin_arns" {
  description = "IAM role or user ARNs that administer the created KMS key (include the principal that runs Terraform). Empty delegates administration to IAM policies in the account (the account root principal)."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "tags" {
  description = "Tags for every resource (merged over tollgate.dev/module)."
  type        = map(string)
  default     = {}
  nullable    = false
}
