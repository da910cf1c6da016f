# Try the module without an AWS account: the CommonJS example's function zipped, and Terraform's
# own filebase64sha256() of the zip beside the module's hash. Only hashicorp/external (the
# module's data source) and terraform_data (built in) are used.
terraform {
  required_version = ">= 1.4"
}

variable "program" {
  description = "The command that runs lambdazip-tf (default: the module's launcher, which needs only python3 >= 3.11)."
  type        = list(string)
  default     = null
}

module "artifact" {
  source = "../../terraform"

  source_dir = "${path.module}/../commonjs/src"
  name       = "no-aws"
  excludes   = ["*.md"]
  program    = var.program
}

output "artifact" {
  description = "The zip: where it is, how big, and its hash as the module and as Terraform compute it."
  value = {
    path                   = module.artifact.output_path
    size                   = module.artifact.output_size
    files                  = module.artifact.file_count
    output_base64sha256    = module.artifact.output_base64sha256
    terraform_sha256       = filebase64sha256(module.artifact.output_path)
    content_hash           = module.artifact.content_hash
    what_wrote_those_bytes = module.artifact.build_options
  }
}

check "the_hash_is_terraforms" {
  assert {
    condition     = filebase64sha256(module.artifact.output_path) == module.artifact.output_base64sha256
    error_message = "Terraform's filebase64sha256() of the zip differs from the module's output_base64sha256."
  }
}
