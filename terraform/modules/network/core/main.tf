locals {
  contract   = jsondecode(file("${path.module}/../../dynamodb-ledger/tables.json"))
  create_vpc = var.vpc_id == null

  # One private subnet per zone, numbered in the order given (so adding a zone at the end
  # moves no existing subnet).
  private_subnets = {
    for i, az in var.availability_zones : az => {
      cidr = cidrsubnet(var.vpc_cidr, var.subnet_newbits, i)
      name = "${var.name}-private-${az}"
    }
  }

  # A gateway endpoint routes all DynamoDB traffic of its route tables, so this policy is
  # what any workload on those route tables can do in DynamoDB: the runtime's actions on the
  # ledger tables of this account, nothing else.
  endpoint_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "TollgateLedgerTablesOnly"
        Effect    = "Allow"
        Principal = "*"
        Action    = sort(local.contract.runtime_actions)
        Resource  = sort(var.table_arns)
        Condition = {
          StringEquals = { "aws:PrincipalAccount" = var.account_id }
        }
      },
    ]
  }

  tags = merge({ "tollgate.dev/module" = "network" }, var.tags)
}
