output "values" {
  description = "The Helm values, as an object: tollgateRuntime.name, tollgateRuntime.spec.serviceAccount.annotations and tollgateRuntime.spec.store (kind dynamodb; dynamodb.region, tablePrefix, endpointOverride when set)."
  value       = local.values
}

output "yaml" {
  description = "The same values as YAML, for `helm install -f`."
  value       = yamlencode(local.values)
}
