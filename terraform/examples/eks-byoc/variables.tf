# Each input is validated by the module it is passed to (in that module's provider-less core).

variable "region" {
  description = "AWS region of the EKS cluster; the tables are created there too."
  type        = string
}

variable "cluster_name" {
  description = "Name of the existing EKS cluster the runtime runs in."
  type        = string
}

variable "route_table_ids" {
  description = "Route tables of the cluster's node subnets (the ones the runtime's pods use). The DynamoDB gateway endpoint is added to each."
  type        = list(string)
}

variable "table_prefix" {
  description = "Prefix of the ledger tables, e.g. \"tollgate-prod-\"."
  type        = string
  default     = "tollgate-"
}

variable "namespace" {
  description = "Kubernetes namespace the chart is installed into."
  type        = string
  default     = "tollgate"
}

variable "identity_mode" {
  description = "pod_identity (default; the cluster needs the eks-pod-identity-agent add-on) or irsa (the cluster needs an IAM OIDC provider)."
  type        = string
  default     = "pod_identity"
}

variable "billing_mode" {
  description = "PAY_PER_REQUEST (on-demand) or PROVISIONED (then set provisioned_capacity)."
  type        = string
  default     = "PAY_PER_REQUEST"
}

variable "provisioned_capacity" {
  description = "Read and write capacity units per table (journal, checkpoints, idempotency, leases) when billing_mode is PROVISIONED."
  type = map(object({
    read_units  = number
    write_units = number
  }))
  default = {}
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection on the tables."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
