# The core of runtime-iam: validates every input of the module and builds the role's trust
# policy and permissions policy. It declares no provider, so `terraform test` runs it
# offline; the parent module only turns its outputs into resources.
terraform {
  required_version = ">= 1.9.0, < 2.0.0"
}
