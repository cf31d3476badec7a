variable "role_name" {
  description = "Name of the IAM role the runtime's Kubernetes service account assumes (1-64 characters of A-Z, a-z, 0-9 and +=,.@_-)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.role_name))
    error_message = "role_name must be 1-64 characters of A-Z, a-z, 0-9 and +=,.@_-."
  }
}

variable "role_path" {
  description = "IAM path of the role, e.g. \"/\" or \"/tollgate/\"."
  type        = string
  default     = "/"
  nullable    = false

  validation {
    condition     = can(regex("^/([A-Za-z0-9+=,.@_-]+/)*$", var.role_path)) && length(var.role_path) <= 512
    error_message = "role_path must start and end with '/' and hold only A-Z, a-z, 0-9 and +=,.@_- between slashes."
  }
}

variable "permissions_boundary_arn" {
  description = "ARN of a managed policy to set as the role's permissions boundary, if your organisation requires one. Null sets none."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/[A-Za-z0-9+=,.@_/-]+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be an IAM policy ARN (arn:aws:iam::ACCOUNT:policy/NAME)."
  }
}

variable "identity_mode" {
  description = "How the service account gets the role: pod_identity (EKS Pod Identity association, the default; needs the eks-pod-identity-agent add-on) or irsa (IAM roles for service accounts; needs the cluster's OIDC provider and a service-account annotation)."
  type        = string
  default     = "pod_identity"
  nullable    = false

  validation {
    condition     = contains(["pod_identity", "irsa"], var.identity_mode)
    error_message = "identity_mode must be pod_identity or irsa."
  }
}

variable "cluster_name" {
  description = "Name of the EKS cluster the runtime runs in. The trust policy accepts only sessions of this cluster."
  type        = string

  validation {
    condition     = can(regex("^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$", var.cluster_name))
    error_message = "cluster_name must be an EKS cluster name: 1-100 characters of A-Z, a-z, 0-9, '_' and '-', starting with a letter or digit."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the runtime's service account."
  type        = string
  default     = "tollgate"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit."
  }
}

variable "service_account" {
  description = "Name of the runtime's Kubernetes service account (the chart's default is tollgate-runtime)."
  type        = string
  default     = "tollgate-runtime"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.service_account))
    error_message = "service_account must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit."
  }
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider. Required when identity_mode is irsa, ignored otherwise."
  type        = string
  default     = null

  validation {
    condition = (
      var.identity_mode == "irsa"
      ? can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/[a-z0-9.-]+(/[A-Za-z0-9]+)+$", var.oidc_provider_arn))
      : true
    )
    error_message = "oidc_provider_arn must be an IAM OIDC provider ARN (arn:aws:iam::ACCOUNT:oidc-provider/oidc.eks.REGION.amazonaws.com/id/ID) when identity_mode is irsa."
  }
}

variable "table_arns" {
  description = "ARNs of the ledger tables (dynamodb-ledger's table_arns). The only resources the role may touch in DynamoDB."
  type        = list(string)
  nullable    = false

  validation {
    condition = length(var.table_arns) > 0 && alltrue([
      for a in var.table_arns : can(regex("^arn:aws[a-z-]*:dynamodb:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:table/[A-Za-z0-9_.-]{3,255}$", a))
    ])
    error_message = "table_arns must be a non-empty list of DynamoDB table ARNs, without wildcards."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the tables (dynamodb-ledger's kms_key_arn). The role may use it only through DynamoDB."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:key/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a KMS key, not an alias and not a wildcard."
  }
}

variable "source_vpce_ids" {
  description = "IDs of the DynamoDB gateway endpoints (network's vpc_endpoint_id) the runtime's calls must come through (aws:SourceVpce). Stolen credentials are then useless outside the VPC. Empty adds no such condition."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for id in var.source_vpce_ids : can(regex("^vpce-[0-9a-f]{8,17}$", id))])
    error_message = "source_vpce_ids must hold VPC endpoint IDs (vpce-0123456789abcdef0)."
  }
}

variable "account_id" {
  description = "AWS account of the role and the cluster (the parent module passes aws_caller_identity)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "partition" {
  description = "AWS partition (the parent module passes aws_partition)."
  type        = string

  validation {
    condition     = can(regex("^aws(-[a-z]+)*$", var.partition))
    error_message = "partition must be an AWS partition name such as aws, aws-cn or aws-us-gov."
  }
}

variable "region" {
  description = "AWS region of the cluster and the tables (the parent module passes aws_region)."
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
