# State lives in S3 with native locking (a .tflock object, no DynamoDB table) and is
# encrypted client-side by OpenTofu before it leaves the machine. The bucket and the KMS
# key are created once by hand: see ../../README.md, "Bootstrap".
terraform {
  backend "s3" {
    bucket       = "churn-tofu-state-111122223333"
    key          = "envs/shared/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    kms_key_id   = "alias/churn-tofu-state"
    use_lockfile = true
  }

  encryption {
    key_provider "aws_kms" "state" {
      kms_key_id = "alias/churn-tofu-state"
      region     = "eu-west-1"
      key_spec   = "AES_256"
    }

    method "aes_gcm" "state" {
      keys = key_provider.aws_kms.state
    }

    state {
      method   = method.aes_gcm.state
      enforced = true
    }

    plan {
      method   = method.aes_gcm.state
      enforced = true
    }
  }
}
