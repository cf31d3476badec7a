# The core of network: validates every input of the module, lays out the optional VPC's
# private subnets and builds the gateway endpoint's policy. It declares no provider, so
# `terraform test` runs it offline; the parent module only turns its outputs into resources.
terraform {
  required_version = ">= 1.9.0, < 2.0.0"
}
