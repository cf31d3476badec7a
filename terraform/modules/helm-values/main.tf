locals {
  dynamodb = merge(
    { region = var.region, tablePrefix = var.table_prefix },
    var.endpoint_url == null ? {} : { endpointOverride = var.endpoint_url },
  )

  # The chart's `runtime` values (charts/tollgate/values.yaml): `spec` is shaped like the
  # TollgateRuntime resource (crds/tollgateruntimes.tollgate.dev.yaml); the chart renders it
  # and the operator names the runtime's ServiceAccount after it.
  values = {
    runtime = {
      enabled = true
      name    = var.runtime_name
      spec = {
        serviceAccount = {
          annotations = var.service_account_annotations
        }
        store = {
          kind     = "dynamodb"
          dynamodb = local.dynamodb
        }
      }
    }
  }
}
