locals {
  # The actions come from the contract shared with the runtime, not from an input: the role
  # can never be granted more than the runtime uses.
  contract         = jsondecode(file("${path.module}/../../dynamodb-ledger/tables.json"))
  dynamodb_actions = sort(local.contract.runtime_actions)
  kms_actions      = sort(local.contract.runtime_kms_actions)

  cluster_arn = "arn:${var.partition}:eks:${var.region}:${var.account_id}:cluster/${var.cluster_name}"

  # oidc.eks.REGION.amazonaws.com/id/ID, the issuer without https://, as IAM condition keys use it.
  oidc_issuer = var.identity_mode == "irsa" ? split("oidc-provider/", var.oidc_provider_arn)[1] : null

  pod_identity_trust = {
    Sid       = "EksPodIdentity"
    Effect    = "Allow"
    Principal = { Service = "pods.eks.amazonaws.com" }
    Action    = ["sts:AssumeRole", "sts:TagSession"]
    # EKS Pod Identity sets these session tags; without them any association in the account
    # could hand the role to any pod.
    Condition = {
      StringEquals = {
        "aws:RequestTag/eks-cluster-arn"            = local.cluster_arn
        "aws:RequestTag/kubernetes-namespace"       = var.namespace
        "aws:RequestTag/kubernetes-service-account" = var.service_account
      }
    }
  }

  irsa_trust = {
    Sid       = "EksServiceAccountWebIdentity"
    Effect    = "Allow"
    Principal = { Federated = var.oidc_provider_arn }
    Action    = ["sts:AssumeRoleWithWebIdentity"]
    Condition = {
      StringEquals = {
        "${coalesce(local.oidc_issuer, "unused")}:sub" = "system:serviceaccount:${var.namespace}:${var.service_account}"
        "${coalesce(local.oidc_issuer, "unused")}:aud" = "sts.amazonaws.com"
      }
    }
  }

  trust_policy = {
    Version   = "2012-10-17"
    Statement = [var.identity_mode == "irsa" ? local.irsa_trust : local.pod_identity_trust]
  }

  tables_statement = merge(
    {
      Sid      = "LedgerTables"
      Effect   = "Allow"
      Action   = local.dynamodb_actions
      Resource = sort(var.table_arns)
    },
    length(var.source_vpce_ids) == 0 ? {} : {
      Condition = { StringEquals = { "aws:SourceVpce" = sort(var.source_vpce_ids) } }
    },
  )

  permissions_policy = {
    Version = "2012-10-17"
    Statement = [
      local.tables_statement,
      {
        # DynamoDB uses the table key on the caller's behalf; the role cannot use it directly.
        Sid      = "LedgerKeyThroughDynamoDB"
        Effect   = "Allow"
        Action   = local.kms_actions
        Resource = [var.kms_key_arn]
        Condition = {
          StringEquals = {
            "kms:ViaService"    = "dynamodb.${var.region}.${var.dns_suffix}"
            "kms:CallerAccount" = var.account_id
          }
        }
      },
    ]
  }

  service_account_annotations = (
    var.identity_mode == "irsa"
    ? { "eks.amazonaws.com/role-arn" = "arn:${var.partition}:iam::${var.account_id}:role${var.role_path}${var.role_name}" }
    : {}
  )

  tags = merge({ "tollgate.dev/module" = "runtime-iam" }, var.tags)
}
