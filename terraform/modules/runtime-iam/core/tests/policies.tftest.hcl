variables {
  role_name    = "tollgate-prod-runtime"
  cluster_name = "prod"
  table_arns = [
    "arn:aws:dynamodb:eu-west-1:123456789012:table/tollgate-prod-journal",
    "arn:aws:dynamodb:eu-west-1:123456789012:table/tollgate-prod-checkpoints",
    "arn:aws:dynamodb:eu-west-1:123456789012:table/tollgate-prod-idempotency",
    "arn:aws:dynamodb:eu-west-1:123456789012:table/tollgate-prod-leases",
  ]
  kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  account_id  = "123456789012"
  partition   = "aws"
  region      = "eu-west-1"
}

run "permissions_are_exactly_the_runtime_actions_on_the_tables_and_key" {
  command = plan

  assert {
    condition     = output.permissions_policy.Statement[0].Action == sort(jsondecode(file("../../dynamodb-ledger/tables.json")).runtime_actions)
    error_message = "DynamoDB actions must be exactly tables.json's runtime_actions"
  }

  assert {
    condition     = output.permissions_policy.Statement[1].Action == sort(jsondecode(file("../../dynamodb-ledger/tables.json")).runtime_kms_actions)
    error_message = "KMS actions must be exactly tables.json's runtime_kms_actions"
  }

  assert {
    condition     = output.permissions_policy.Statement[0].Resource == sort(var.table_arns)
    error_message = "DynamoDB resources must be exactly the tables"
  }

  assert {
    condition     = tolist(output.permissions_policy.Statement[1].Resource) == tolist([var.kms_key_arn])
    error_message = "KMS resource must be exactly the table key"
  }

  assert {
    condition = alltrue(flatten([
      for s in output.permissions_policy.Statement : [
        for v in concat(s.Action, s.Resource) : length(regexall("[*?]", v)) == 0
      ]
    ]))
    error_message = "no wildcard in any action or resource"
  }

  assert {
    condition     = output.permissions_policy.Statement[1].Condition.StringEquals["kms:ViaService"] == "dynamodb.eu-west-1.amazonaws.com"
    error_message = "the key may be used only through DynamoDB in the region"
  }

  assert {
    condition     = !can(output.permissions_policy.Statement[0].Condition)
    error_message = "no aws:SourceVpce condition without endpoint IDs"
  }
}

run "source_vpce_condition" {
  command = plan

  variables {
    source_vpce_ids = ["vpce-0123456789abcdef0"]
  }

  assert {
    condition     = tolist(output.permissions_policy.Statement[0].Condition.StringEquals["aws:SourceVpce"]) == tolist(["vpce-0123456789abcdef0"])
    error_message = "table access must be pinned to the gateway endpoint"
  }
}

run "pod_identity_trust_is_pinned_to_cluster_namespace_and_service_account" {
  command = plan

  assert {
    condition     = jsonencode(output.trust_policy.Statement[0].Principal) == jsonencode({ Service = "pods.eks.amazonaws.com" })
    error_message = "pod identity is assumed by pods.eks.amazonaws.com"
  }

  assert {
    condition = jsonencode(output.trust_policy.Statement[0].Condition.StringEquals) == jsonencode({
      "aws:RequestTag/eks-cluster-arn"            = "arn:aws:eks:eu-west-1:123456789012:cluster/prod"
      "aws:RequestTag/kubernetes-namespace"       = "tollgate"
      "aws:RequestTag/kubernetes-service-account" = "tollgate-runtime"
    })
    error_message = "unexpected trust conditions ${jsonencode(output.trust_policy.Statement[0].Condition)}"
  }

  assert {
    condition     = output.create_pod_identity_association && length(output.service_account_annotations) == 0
    error_message = "pod identity needs an association and no annotation"
  }
}

run "irsa_trust_is_pinned_to_the_service_account" {
  command = plan

  variables {
    identity_mode     = "irsa"
    namespace         = "billing"
    role_path         = "/tollgate/"
    oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
  }

  assert {
    condition = jsonencode(output.trust_policy.Statement[0].Condition.StringEquals) == jsonencode({
      "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:sub" = "system:serviceaccount:billing:tollgate-runtime"
      "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:aud" = "sts.amazonaws.com"
    })
    error_message = "unexpected trust conditions ${jsonencode(output.trust_policy.Statement[0].Condition)}"
  }

  assert {
    condition     = tolist(output.trust_policy.Statement[0].Action) == tolist(["sts:AssumeRoleWithWebIdentity"])
    error_message = "IRSA assumes with web identity only"
  }

  assert {
    condition     = output.service_account_annotations == tomap({ "eks.amazonaws.com/role-arn" = "arn:aws:iam::123456789012:role/tollgate/tollgate-prod-runtime" })
    error_message = "unexpected annotations ${jsonencode(output.service_account_annotations)}"
  }

  assert {
    condition     = !output.create_pod_identity_association
    error_message = "irsa needs no pod identity association"
  }
}

run "china_partition" {
  command = plan

  variables {
    partition   = "aws-cn"
    region      = "cn-north-1"
    dns_suffix  = "amazonaws.com.cn"
    table_arns  = ["arn:aws-cn:dynamodb:cn-north-1:123456789012:table/tollgate-journal"]
    kms_key_arn = "arn:aws-cn:kms:cn-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }

  assert {
    condition     = output.permissions_policy.Statement[1].Condition.StringEquals["kms:ViaService"] == "dynamodb.cn-north-1.amazonaws.com.cn"
    error_message = "kms:ViaService must follow the partition's DNS suffix"
  }

  assert {
    condition     = output.role_arn == "arn:aws-cn:iam::123456789012:role/tollgate-prod-runtime"
    error_message = "unexpected role ARN ${output.role_arn}"
  }
}
