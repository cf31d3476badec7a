# The core of dynamodb-ledger: validates every input of the module and derives the table
# definitions and the KMS key policy from tables.json. It declares no provider, so
# `terraform test` runs it offline; the parent module only turns its outputs into resources.
terraform {
  required_version = ">= 1.9.0, < 2.0.0"
}
