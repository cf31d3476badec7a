locals {
  dynamodb = merge(
    { region = var.region, tablePrefix = var.table_prefix },
    var.endpoint_url == null ? {} : { endpointOverride = var.endpoint_url },
  )

  # Shaped like the TollgateRuntime resource (crds/tollgateruntimes.tollgate.dev.yaml): the
  # chart renders it, the operator names the runtime's ServiceAccount after it.
  values = {
    tollgateRuntime = {
      name = var.runtime_name
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
