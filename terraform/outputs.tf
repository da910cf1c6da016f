# Every output waits for terraform_data.artifact, so a Lambda function or layer that uses one is
# created only after the artifact was checked on the machine that applies.

output "output_path" {
  description = "Path of the function zip, relative to the root module when output_dir or output_path is (the default .lambdazip is): aws_lambda_function.filename."
  value       = local.output_path
  depends_on  = [terraform_data.artifact]
}

output "output_base64sha256" {
  description = "Base64 sha256 of the function zip, as filebase64sha256() computes it: aws_lambda_function.source_code_hash."
  value       = local.result.output_base64sha256
  depends_on  = [terraform_data.artifact]
}

output "output_sha256" {
  description = "Hex sha256 of the function zip."
  value       = local.result.output_sha256
  depends_on  = [terraform_data.artifact]
}

output "output_md5" {
  description = "Hex md5 of the function zip (an S3 object's etag)."
  value       = local.result.output_md5
  depends_on  = [terraform_data.artifact]
}

output "output_size" {
  description = "Size of the function zip in bytes."
  value       = tonumber(local.result.output_size)
  depends_on  = [terraform_data.artifact]
}

output "content_hash" {
  description = "sha256 of what the artifacts contain (names, kinds, modes, file digests, options); the same on every machine; the same hash means the same zip bytes."
  value       = local.result.content_hash
  depends_on  = [terraform_data.artifact]
}

output "files_hash" {
  description = "sha256 of the artifacts' files alone (names, kinds, modes, file digests), without the options that change bytes: equal files_hash and different content_hash mean the same files written differently."
  value       = local.result.files_hash
  depends_on  = [terraform_data.artifact]
}

output "build_options" {
  description = "What wrote the bytes besides the files: the lambdazip-tf version, compression level, deflater and timestamp."
  value       = local.result.build_options
  depends_on  = [terraform_data.artifact]
}

output "file_count" {
  description = "Files in the function zip and the layer zip together."
  value       = tonumber(local.result.file_count)
  depends_on  = [terraform_data.artifact]
}

output "symlink_count" {
  description = "Symbolic links in the function zip and the layer zip together."
  value       = tonumber(local.result.symlink_count)
  depends_on  = [terraform_data.artifact]
}

output "unzipped_size" {
  description = "Bytes of file content in the function zip and the layer zip together (Lambda allows 250 MB)."
  value       = tonumber(local.result.unzipped_size)
  depends_on  = [terraform_data.artifact]
}

output "layer_output_path" {
  description = "Path of the layer zip (null without layer), relative like output_path: aws_lambda_layer_version.filename."
  value       = local.layer_output_path
  depends_on  = [terraform_data.artifact]
}

output "layer_output_base64sha256" {
  description = "Base64 sha256 of the layer zip (null without layer): aws_lambda_layer_version.source_code_hash."
  value       = lookup(local.result, "layer_output_base64sha256", null)
  depends_on  = [terraform_data.artifact]
}

output "layer_output_size" {
  description = "Size of the layer zip in bytes (null without layer)."
  value       = try(tonumber(local.result.layer_output_size), null)
  depends_on  = [terraform_data.artifact]
}
