# A Python function managed by uv: pyproject.toml declares the dependencies, `uv pip install
# --python-platform aarch64-manylinux_2_34` installed Lambda's arm64 wheels into package/
# (site_packages) from any machine, and the handler lives in orders/ (source_dir).
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

variable "architecture" {
  description = "The function's CPU: x86_64 or arm64. The installed wheels are checked for it."
  type        = string
  default     = "arm64"
}

module "artifact" {
  source = "../../terraform"

  source_dir     = "${path.module}/orders"
  package_dir    = path.module
  site_packages  = "${path.module}/package"
  python_version = "3.12"
  architecture   = var.architecture
  name           = "orders"
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
  name               = "lambdazip-python-example"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_lambda_function" "this" {
  function_name    = "lambdazip-python-example"
  role             = aws_iam_role.lambda.arn
  runtime          = "python3.12"
  handler          = "handler.handler"
  architectures    = [var.architecture]
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
