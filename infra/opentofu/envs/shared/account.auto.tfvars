# The account-wide values (OpenTofu loads *.auto.tfvars by itself), applied once per account
# before envs/dev, staging and prod; the environments keep their sizes and pins in terraform.tfvars.
account_id = "111122223333"
region     = "eu-west-1"
