output "values" {
  description = "The Helm values, as an object: runtime.name, runtime.spec.serviceAccount.annotations and runtime.spec.store (kind dynamodb; dynamodb.region, tablePrefix, endpointOverride when set)."
  value       = local.values
}

output "yaml" {
  description = "The same values as YAML, for `helm install -f`."
  value       = yamlencode(local.values)
}
