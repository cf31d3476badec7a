# Renders the Helm values that connect the chart (charts/tollgate) to the AWS side. Declares
# no provider: `terraform test` runs it offline.
terraform {
  required_version = ">= 1.9.0, < 2.0.0"
}
