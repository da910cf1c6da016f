# An npm workspaces monorepo. functions/api depends on the workspace package @demo/shared, which npm
# links from the repository root's node_modules, and on debug, hoisted to the root. The repository
# root (it has "workspaces") is the default allowed root, so the linked package's files are zipped.
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

module "api" {
  source = "../../terraform"

  source_dir = "${path.module}/functions/api"
  name       = "api"
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
  name               = "lambdazip-monorepo-example"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_lambda_function" "api" {
  function_name    = "lambdazip-monorepo-api"
  role             = aws_iam_role.lambda.arn
  runtime          = "nodejs20.x"
  handler          = "index.handler"
  filename         = module.api.output_path
  source_code_hash = module.api.output_base64sha256
}
