data "aws_caller_identity" "current" {}

# The partition- and region-correct service name (com.amazonaws.REGION.dynamodb, or the
# cn. form in China).
data "aws_vpc_endpoint_service" "dynamodb" {
  service      = "dynamodb"
  service_type = "Gateway"
}

# Validation, the subnet layout and the endpoint policy live in the provider-less core.
module "core" {
  source = "./core"

  name                     = var.name
  vpc_id                   = var.vpc_id
  route_table_ids          = var.route_table_ids
  vpc_cidr                 = var.vpc_cidr
  availability_zones       = var.availability_zones
  subnet_newbits           = var.subnet_newbits
  table_arns               = var.table_arns
  flow_log_destination_arn = var.flow_log_destination_arn
  tags                     = var.tags

  account_id = data.aws_caller_identity.current.account_id
}

# A new VPC has private subnets only: no internet gateway, no NAT gateway, no public IPs.
resource "aws_vpc" "this" {
  count = module.core.create_vpc ? 1 : 0

  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(module.core.tags, { Name = var.name })
}

# Takes over the VPC's default security group and removes all its rules, so nothing that
# lands in it by default can talk to anything.
resource "aws_default_security_group" "this" {
  count = module.core.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = merge(module.core.tags, { Name = "${var.name}-default-deny" })
}

resource "aws_flow_log" "this" {
  count = module.core.create_vpc && var.flow_log_destination_arn != null ? 1 : 0

  vpc_id               = aws_vpc.this[0].id
  traffic_type         = "ALL"
  log_destination_type = "s3"
  log_destination      = var.flow_log_destination_arn
  tags                 = merge(module.core.tags, { Name = var.name })
}

resource "aws_subnet" "private" {
  for_each = module.core.private_subnets

  vpc_id                  = aws_vpc.this[0].id
  availability_zone       = each.key
  cidr_block              = each.value.cidr
  map_public_ip_on_launch = false
  tags                    = merge(module.core.tags, { Name = each.value.name, "kubernetes.io/role/internal-elb" = "1" })
}

resource "aws_route_table" "private" {
  for_each = module.core.private_subnets

  vpc_id = aws_vpc.this[0].id
  tags   = merge(module.core.tags, { Name = each.value.name })
}

resource "aws_route_table_association" "private" {
  for_each = module.core.private_subnets

  subnet_id      = aws_subnet.private[each.key].id
  route_table_id = aws_route_table.private[each.key].id
}

locals {
  vpc_id          = module.core.create_vpc ? aws_vpc.this[0].id : var.vpc_id
  route_table_ids = module.core.create_vpc ? [for az in var.availability_zones : aws_route_table.private[az].id] : var.route_table_ids
}

resource "aws_vpc_endpoint" "dynamodb" {
  vpc_id            = local.vpc_id
  service_name      = data.aws_vpc_endpoint_service.dynamodb.service_name
  vpc_endpoint_type = "Gateway"
  route_table_ids   = local.route_table_ids
  policy            = module.core.endpoint_policy_json
  tags              = merge(module.core.tags, { Name = "${var.name}-dynamodb" })
}
