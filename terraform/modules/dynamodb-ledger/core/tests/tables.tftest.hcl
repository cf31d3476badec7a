# Drift test for the contract with the runtime: tables.json is read by this core (and embedded
# by the runtime), and the names and keys below are the ones the runtime's dynamodb store
# expects. Changing tables.json without changing both sides makes this test fail on purpose.

variables {
  table_prefix = "tollgate-prod-"
  account_id   = "123456789012"
  partition    = "aws"
  region       = "eu-west-1"
}

run "table_names_keys_and_ttl_come_from_tables_json" {
  command = plan

  assert {
    condition = output.table_names == {
      journal     = "tollgate-prod-journal"
      checkpoints = "tollgate-prod-checkpoints"
      idempotency = "tollgate-prod-idempotency"
      leases      = "tollgate-prod-leases"
    }
    error_message = "table names drifted from prefix + tables.json suffixes: ${jsonencode(output.table_names)}"
  }

  assert {
    condition = alltrue([
      for k, t in output.tables : t.hash_key.name == "pk" && t.hash_key.type == "S"
    ])
    error_message = "every table must be keyed by pk (S)"
  }

  assert {
    condition = (
      output.tables.journal.range_key == { name = "seq", type = "N" } &&
      output.tables.checkpoints.range_key == { name = "seq", type = "N" } &&
      output.tables.idempotency.range_key == null &&
      output.tables.leases.range_key == null
    )
    error_message = "range keys drifted: journal and checkpoints sort by seq (N); idempotency and leases have none"
  }

  assert {
    condition = (
      output.tables.idempotency.ttl_attribute == "expires_at_s" &&
      output.tables.journal.ttl_attribute == null &&
      output.tables.checkpoints.ttl_attribute == null &&
      output.tables.leases.ttl_attribute == null
    )
    error_message = "TTL must be on idempotency records only (expires_at_s): the journal is never TTL-deleted"
  }

  assert {
    condition     = [for a in output.tables.journal.attributes : a.name] == ["pk", "seq"]
    error_message = "only key attributes are declared"
  }

  assert {
    condition     = output.tables.journal.arn == "arn:aws:dynamodb:eu-west-1:123456789012:table/tollgate-prod-journal"
    error_message = "unexpected table ARN ${output.tables.journal.arn}"
  }

  # Everything read from the file, compared with the file itself, so a new table in
  # tables.json shows up here and cannot be silently skipped by the module.
  assert {
    condition     = sort(keys(output.tables)) == sort(keys(jsondecode(file("../tables.json")).tables))
    error_message = "the module must create exactly the tables listed in tables.json"
  }

  assert {
    condition     = output.runtime_dynamodb_actions == jsondecode(file("../tables.json")).runtime_actions
    error_message = "runtime actions must come from tables.json"
  }
}

run "on_demand_is_the_default_and_has_no_capacity" {
  command = plan

  assert {
    condition     = alltrue([for t in output.tables : t.billing_mode == "PAY_PER_REQUEST" && t.read_capacity == null && t.write_capacity == null])
    error_message = "on-demand tables must not carry capacity"
  }
}

run "provisioned_capacity_per_table" {
  command = plan

  variables {
    billing_mode = "PROVISIONED"
    provisioned_capacity = {
      journal     = { read_units = 5, write_units = 50 }
      checkpoints = { read_units = 5, write_units = 10 }
      idempotency = { read_units = 10, write_units = 50 }
      leases      = { read_units = 1, write_units = 1 }
    }
  }

  assert {
    condition     = output.tables.journal.write_capacity == 50 && output.tables.leases.read_capacity == 1
    error_message = "capacity must be taken per table"
  }
}

run "kms_alias_and_key_policy" {
  command = plan

  assert {
    condition     = output.kms_alias == "alias/tollgate-prod-ledger"
    error_message = "unexpected alias ${output.kms_alias}"
  }

  assert {
    condition = alltrue([
      for s in output.kms_key_policy.Statement :
      !contains(flatten([try(s.Principal.AWS, [])]), "*") && !contains(s.Action, "kms:*")
    ])
    error_message = "the key policy must have no wildcard principal and no kms:* action"
  }

  assert {
    condition     = output.kms_key_policy.Statement[1].Condition.StringEquals["kms:ViaService"] == "dynamodb.eu-west-1.amazonaws.com"
    error_message = "data-key use must be limited to DynamoDB in the table's region"
  }

  assert {
    condition     = tolist(output.kms_key_policy.Statement[0].Principal.AWS) == tolist(["arn:aws:iam::123456789012:root"])
    error_message = "without named admins, administration is delegated to IAM in the account"
  }
}

run "named_key_admins" {
  command = plan

  variables {
    kms_key_admin_arns = ["arn:aws:iam::123456789012:role/platform-admin"]
  }

  assert {
    condition     = tolist(output.kms_key_policy.Statement[0].Principal.AWS) == tolist(["arn:aws:iam::123456789012:role/platform-admin"])
    error_message = "named admins replace the account root in the admin statement"
  }
}

run "tags_merge_over_module_tags" {
  command = plan

  variables {
    tags = { team = "platform" }
  }

  assert {
    condition     = output.tags == { "tollgate.dev/module" = "dynamodb-ledger", team = "platform" }
    error_message = "unexpected tags ${jsonencode(output.tags)}"
  }
}
