provider "aws" {
  region = var.region
}

data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

# Only with IRSA: the cluster's IAM OIDC provider (create it with
# `eksctl utils associate-iam-oidc-provider` if the cluster has none).
data "aws_iam_openid_connect_provider" "cluster" {
  count = var.identity_mode == "irsa" ? 1 : 0

  url = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
}

locals {
  service_account = "tollgate-runtime"
  role_name       = "${var.table_prefix}runtime"
}

module "ledger" {
  source = "../../modules/dynamodb-ledger"

  table_prefix         = var.table_prefix
  billing_mode         = var.billing_mode
  provisioned_capacity = var.provisioned_capacity
  deletion_protection  = var.deletion_protection
  tags                 = var.tags
}

module "network" {
  source = "../../modules/network"

  name            = trimsuffix(var.table_prefix, "-")
  vpc_id          = data.aws_eks_cluster.this.vpc_config[0].vpc_id
  route_table_ids = var.route_table_ids
  table_arns      = values(module.ledger.table_arns)
  tags            = var.tags
}

module "runtime_iam" {
  source = "../../modules/runtime-iam"

  role_name         = local.role_name
  identity_mode     = var.identity_mode
  cluster_name      = var.cluster_name
  namespace         = var.namespace
  service_account   = local.service_account
  oidc_provider_arn = one(data.aws_iam_openid_connect_provider.cluster[*].arn)
  table_arns        = values(module.ledger.table_arns)
  kms_key_arn       = module.ledger.kms_key_arn
  source_vpce_ids   = [module.network.vpc_endpoint_id]
  tags              = var.tags
}

module "helm_values" {
  source = "../../modules/helm-values"

  region                      = module.ledger.region
  table_prefix                = module.ledger.table_prefix
  runtime_name                = local.service_account
  service_account_annotations = module.runtime_iam.service_account_annotations
}
