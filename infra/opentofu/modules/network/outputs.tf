output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "IDs of the private subnets (nodes, database, interface endpoints), one per zone."
  value       = [for az in var.availability_zones : aws_subnet.private[az].id]
}

output "public_subnet_ids" {
  description = "IDs of the public subnets (internet-facing load balancers, NAT), one per zone."
  value       = [for az in var.availability_zones : aws_subnet.public[az].id]
}

output "nat_gateway_count" {
  description = "Number of NAT gateways created (cost driver)."
  value       = length(aws_nat_gateway.this)
}
