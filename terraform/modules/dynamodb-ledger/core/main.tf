locals {
  # The contract shared with the runtime (which embeds the same file).
  contract = jsondecode(file("${path.module}/../tables.json"))

  tables = {
    for key, t in local.contract.tables : key => {
      name          = "${var.table_prefix}${t.suffix}"
      arn           = "arn:${var.partition}:dynamodb:${var.region}:${var.account_id}:table/${var.table_prefix}${t.suffix}"
      hash_key      = t.hash_key
      range_key     = try(t.range_key, null)
      ttl_attribute = try(t.ttl_attribute, null)
      # Only key attributes are declared: DynamoDB is schemaless for everything else.
      attributes     = concat([t.hash_key], try([t.range_key], []))
      billing_mode   = var.billing_mode
      read_capacity  = try(var.provisioned_capacity[key].read_units, null)
      write_capacity = try(var.provisioned_capacity[key].write_units, null)
    }
  }

  account_root = "arn:${var.partition}:iam::${var.account_id}:root"
  key_admins   = length(var.kms_key_admin_arns) > 0 ? sort(var.kms_key_admin_arns) : [local.account_root]

  # Policy of the KMS key the module creates when none is given. Resource "*" inside a key
  # policy means "this key"; no statement has a wildcard principal.
  kms_key_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        # Without this statement IAM policies in the account cannot grant access to the key
        # and the key could become unmanageable. Key material use is not part of it unless
        # the principal is the account root (then IAM decides, as with AWS's default policy).
        Sid       = "KeyAdministration"
        Effect    = "Allow"
        Principal = { AWS = local.key_admins }
        Action = [
          "kms:CancelKeyDeletion",
          "kms:CreateAlias",
          "kms:DeleteAlias",
          "kms:DescribeKey",
          "kms:DisableKey",
          "kms:DisableKeyRotation",
          "kms:EnableKey",
          "kms:EnableKeyRotation",
          "kms:GetKeyPolicy",
          "kms:GetKeyRotationStatus",
          "kms:ListAliases",
          "kms:ListGrants",
          "kms:ListKeyPolicies",
          "kms:ListResourceTags",
          "kms:PutKeyPolicy",
          "kms:RevokeGrant",
          "kms:RotateKeyOnDemand",
          "kms:ScheduleKeyDeletion",
          "kms:TagResource",
          "kms:UntagResource",
          "kms:UpdateKeyDescription",
        ]
        Resource = "*"
      },
      {
        # Principals of this account may use the key only through DynamoDB in this region,
        # and only if an IAM policy also allows it (the runtime role's policy does).
        Sid       = "UseThroughDynamoDB"
        Effect    = "Allow"
        Principal = { AWS = local.account_root }
        Action = [
          "kms:CreateGrant",
          "kms:Decrypt",
          "kms:DescribeKey",
          "kms:Encrypt",
          "kms:GenerateDataKey",
          "kms:GenerateDataKeyWithoutPlaintext",
          "kms:ReEncryptFrom",
          "kms:ReEncryptTo",
        ]
        Resource = "*"
        Condition = {
          StringEquals = {
            "kms:ViaService"    = "dynamodb.${var.region}.${var.dns_suffix}"
            "kms:CallerAccount" = var.account_id
          }
        }
      },
      {
        # DynamoDB reads the key's metadata to check that the key is usable for the tables
        # (read-only, as in AWS's documented key policy for DynamoDB, without its wildcards).
        Sid       = "DynamoDBReadsKeyMetadata"
        Effect    = "Allow"
        Principal = { Service = "dynamodb.amazonaws.com" }
        Action    = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants"]
        Resource  = "*"
      },
    ]
  }

  tags = merge({ "tollgate.dev/module" = "dynamodb-ledger" }, var.tags)
}
