variable "region" {
  description = "AWS region of the ledger tables (dynamodb-ledger's region)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "table_prefix" {
  description = "Prefix of the ledger tables (dynamodb-ledger's table_prefix)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", var.table_prefix))
    error_message = "table_prefix must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-', starting with a letter or digit."
  }
}

variable "endpoint_url" {
  description = "DynamoDB endpoint for the runtime (TollgateRuntime spec.store.dynamodb.endpointOverride), only when it must differ from the region's default, e.g. a FIPS endpoint. A gateway VPC endpoint needs none: it works on the default endpoint. Null omits it."
  type        = string
  default     = null

  validation {
    condition     = var.endpoint_url == null || can(regex("^https://[a-z0-9.-]+(:[0-9]{1,5})?/?$", var.endpoint_url))
    error_message = "endpoint_url must be an https:// URL with a host name and no path, e.g. https://dynamodb-fips.us-east-1.amazonaws.com."
  }
}

variable "runtime_name" {
  description = "Name of the TollgateRuntime. The operator gives the runtime's ServiceAccount the same name, so it must match runtime-iam's service_account (tollgate-runtime by default)."
  type        = string
  default     = "tollgate-runtime"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.runtime_name))
    error_message = "runtime_name must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit."
  }
}

variable "service_account_annotations" {
  description = "Annotations of the runtime's ServiceAccount, TollgateRuntime spec.serviceAccount.annotations (runtime-iam's service_account_annotations: the role ARN with IRSA, none with EKS Pod Identity)."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for k, v in var.service_account_annotations :
      k != "eks.amazonaws.com/role-arn" || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", v))
    ])
    error_message = "eks.amazonaws.com/role-arn must be an IAM role ARN."
  }
}
