# A TypeScript function: the handler compiled to dist/, package.json and node_modules at the
# project's root (package_dir), built for arm64.
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
  description = "The function's CPU: x86_64 or arm64. The zip's native code is checked for it."
  type        = string
  default     = "arm64"
}

module "artifact" {
  source = "../../terraform"

  source_dir   = "${path.module}/dist"
  package_dir  = path.module
  name         = "typescript"
  architecture = var.architecture
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
  name               = "lambdazip-typescript-example"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_lambda_function" "this" {
  function_name    = "lambdazip-typescript-example"
  role             = aws_iam_role.lambda.arn
  runtime          = "nodejs20.x"
  handler          = "index.handler"
  architectures    = [var.architecture]
  filename         = module.artifact.output_path
  source_code_hash = module.artifact.output_base64sha256

  environment {
    # dist/index.js.map ships beside dist/index.js: stack traces name src/index.ts.
    variables = { NODE_OPTIONS = "--enable-source-maps" }
  }
}

output "artifact" {
  description = "The zip that was deployed."
  value       = { path = module.artifact.output_path, sha256 = module.artifact.output_base64sha256 }
}
