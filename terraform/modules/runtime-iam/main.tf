data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

# Validation and the policy documents live in the provider-less core.
module "core" {
  source = "./core"

  role_name                = var.role_name
  role_path                = var.role_path
  permissions_boundary_arn = var.permissions_boundary_arn
  identity_mode            = var.identity_mode
  cluster_name             = var.cluster_name
  namespace                = var.namespace
  service_account          = var.service_account
  oidc_provider_arn        = var.oidc_provider_arn
  table_arns               = var.table_arns
  kms_key_arn              = var.kms_key_arn
  source_vpce_ids          = var.source_vpce_ids
  tags                     = var.tags

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  dns_suffix = data.aws_partition.current.dns_suffix
}

resource "aws_iam_role" "runtime" {
  name                 = var.role_name
  path                 = var.role_path
  description          = "Tollgate runtime (${var.namespace}/${var.service_account} on ${var.cluster_name}): ledger tables only"
  assume_role_policy   = module.core.trust_policy_json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = 3600
  tags                 = module.core.tags
}

# Inline, so the permissions live and die with the role and cannot be attached elsewhere.
resource "aws_iam_role_policy" "ledger" {
  name   = "tollgate-ledger"
  role   = aws_iam_role.runtime.id
  policy = module.core.permissions_policy_json
}

resource "aws_eks_pod_identity_association" "runtime" {
  count = module.core.create_pod_identity_association ? 1 : 0

  cluster_name    = var.cluster_name
  namespace       = var.namespace
  service_account = var.service_account
  role_arn        = aws_iam_role.runtime.arn
  tags            = module.core.tags
}
