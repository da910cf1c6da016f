terraform {
  # terraform_data (the apply-time check) arrived in Terraform 1.4.
  required_version = ">= 1.4"

  required_providers {
    external = {
      source  = "hashicorp/external"
      version = ">= 2.2"
    }
  }
}
