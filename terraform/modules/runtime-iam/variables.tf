# Types, defaults and descriptions of the module's inputs. Every input is passed to ./core,
# which holds the validation rules (so they are tested offline by `terraform test` there).

variable "role_name" {
  description = "Name of the IAM role for the runtime's service account (1-64 characters of A-Z, a-z, 0-9 and +=,.@_-)."
  type        = string
}

variable "role_path" {
  description = "IAM path of the role."
  type        = string
  default     = "/"
  nullable    = false
}

variable "permissions_boundary_arn" {
  description = "ARN of a managed policy to set as the role's permissions boundary. Null sets none."
  type        = string
  default     = null
}

variable "identity_mode" {
  description = "pod_identity (EKS Pod Identity association; needs the eks-pod-identity-agent add-on) or irsa (IAM roles for service accounts; needs oidc_provider_arn and the service-account annotation from the output)."
  type        = string
  default     = "pod_identity"
  nullable    = false
}

variable "cluster_name" {
  description = "Name of the EKS cluster the runtime runs in."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the runtime's service account."
  type        = string
  default     = "tollgate"
  nullable    = false
}

variable "service_account" {
  description = "Name of the runtime's Kubernetes service account (the operator names it after the TollgateRuntime)."
  type        = string
  default     = "tollgate-runtime"
  nullable    = false
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider. Required when identity_mode is irsa."
  type        = string
  default     = null
}

variable "table_arns" {
  description = "ARNs of the ledger tables (dynamodb-ledger's table_arns, as a list)."
  type        = list(string)
  nullable    = false
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the tables (dynamodb-ledger's kms_key_arn)."
  type        = string
}

variable "source_vpce_ids" {
  description = "DynamoDB gateway endpoint IDs the runtime's calls must come through (aws:SourceVpce). Empty adds no such condition."
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
