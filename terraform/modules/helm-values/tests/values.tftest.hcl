variables {
  region       = "eu-west-1"
  table_prefix = "tollgate-prod-"
}

run "pod_identity_values" {
  command = plan

  assert {
    condition = yamldecode(output.yaml).runtime.spec.store == {
      kind     = "dynamodb"
      dynamodb = { region = "eu-west-1", tablePrefix = "tollgate-prod-" }
    }
    error_message = "unexpected store settings:\n${output.yaml}"
  }

  assert {
    condition     = yamldecode(output.yaml).runtime.name == "tollgate-runtime"
    error_message = "the runtime (and so its ServiceAccount) must be named as in the pod identity association:\n${output.yaml}"
  }

  assert {
    condition     = length(yamldecode(output.yaml).runtime.spec.serviceAccount.annotations) == 0
    error_message = "pod identity needs no annotation:\n${output.yaml}"
  }
}

run "irsa_values_carry_the_role_annotation" {
  command = plan

  variables {
    service_account_annotations = { "eks.amazonaws.com/role-arn" = "arn:aws:iam::123456789012:role/tollgate-prod-runtime" }
  }

  assert {
    condition     = yamldecode(output.yaml).runtime.spec.serviceAccount.annotations["eks.amazonaws.com/role-arn"] == "arn:aws:iam::123456789012:role/tollgate-prod-runtime"
    error_message = "missing IRSA annotation:\n${output.yaml}"
  }
}

run "endpoint_override_only_when_given" {
  command = plan

  variables {
    endpoint_url = "https://dynamodb-fips.us-east-1.amazonaws.com"
  }

  assert {
    condition     = yamldecode(output.yaml).runtime.spec.store.dynamodb.endpointOverride == "https://dynamodb-fips.us-east-1.amazonaws.com"
    error_message = "missing endpointOverride:\n${output.yaml}"
  }
}

run "region_format" {
  command = plan
  variables { region = "eu-west" }
  expect_failures = [var.region]
}

run "table_prefix_charset" {
  command = plan
  variables { table_prefix = "tollgate prod" }
  expect_failures = [var.table_prefix]
}

run "endpoint_must_be_https" {
  command = plan
  variables { endpoint_url = "http://localhost:8000" }
  expect_failures = [var.endpoint_url]
}

run "role_annotation_must_be_a_role_arn" {
  command = plan
  variables { service_account_annotations = { "eks.amazonaws.com/role-arn" = "tollgate-runtime" } }
  expect_failures = [var.service_account_annotations]
}

run "runtime_name_is_a_dns_label" {
  command = plan
  variables { runtime_name = "Tollgate" }
  expect_failures = [var.runtime_name]
}
