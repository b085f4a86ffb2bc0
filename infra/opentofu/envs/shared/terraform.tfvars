# The account-wide resources, applied once per account before envs/dev, staging and prod.
account_id = "111122223333"
region     = "eu-west-1"
