# AWS's documented way to package a Python function: `pip install --target .` into the
# function's folder, which then holds the handler and its packages. source_dir is that folder;
# the installed distributions are found there, and only those requirements.txt needs ship.
terraform {
  required_version = ">= 1.4"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.0" }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"
}

module "artifact" {
  source = "../../terraform"

  source_dir     = "${path.module}/function"
  python_version = "3.12"
  name           = "pip-target"
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = "lambdazip-pip-target-example"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_lambda_function" "this" {
  function_name    = "lambdazip-pip-target-example"
  role             = aws_iam_role.lambda.arn
  runtime          = "python3.12"
  handler          = "lambda_function.lambda_handler"
  filename         = module.artifact.output_path
  source_code_hash = module.artifact.output_base64sha256
}

output "artifact" {
  description = "What was built."
  value = {
    path  = module.artifact.output_path
    hash  = module.artifact.output_base64sha256
    files = module.artifact.file_count
  }
}
