# An ESM function whose dependencies live in a layer. Node's ESM loader ignores NODE_PATH, so the
# function zip carries a link node_modules -> /opt/nodejs/node_modules that resolves once Lambda
# mounts the layer at /opt.
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

  source_dir        = "${path.module}/src"
  name              = "esm-layer"
  layer             = true
  node_modules_link = "/opt/nodejs/node_modules"
}

resource "aws_lambda_layer_version" "deps" {
  layer_name          = "lambdazip-esm-layer-example-deps"
  filename            = module.artifact.layer_output_path
  source_code_hash    = module.artifact.layer_output_base64sha256
  compatible_runtimes = ["nodejs20.x"]
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
  name               = "lambdazip-esm-layer-example"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_lambda_function" "this" {
  function_name    = "lambdazip-esm-layer-example"
  role             = aws_iam_role.lambda.arn
  runtime          = "nodejs20.x"
  handler          = "index.handler"
  filename         = module.artifact.output_path
  source_code_hash = module.artifact.output_base64sha256
  layers           = [aws_lambda_layer_version.deps.arn]
}
