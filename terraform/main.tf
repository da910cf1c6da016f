locals {
  output_dir = coalesce(var.output_dir, "${path.root}/.lambdazip")
  # sh runs the launcher, so that it works wherever the module was copied, executable or not.
  program = var.program != null ? var.program : ["sh", "${path.module}/launcher/lambdazip-tf"]

  # The request (docs/design.md, "The request"). The external data source takes a map of
  # strings, so lists are jsonencode()d and unset keys left out. Paths go as they are written,
  # relative to the root module's folder (path.module, path.root): the data source and the
  # provisioner both run there, so the same commit checked out anywhere sends the same request,
  # and a saved plan applied at another path builds where it is applied.
  request = { for key, value in {
    source_dir               = var.source_dir
    package_dir              = var.package_dir
    output_dir               = var.output_path == null ? local.output_dir : null
    output_path              = var.output_path
    name                     = var.name
    runtime                  = var.runtime
    excludes                 = jsonencode(var.excludes)
    includes                 = jsonencode(var.includes)
    exclude_packages         = var.exclude_packages == null ? null : jsonencode(var.exclude_packages)
    include_dev_dependencies = tostring(var.include_dev_dependencies)
    layer                    = tostring(var.layer)
    node_modules_link        = var.node_modules_link
    compression_level        = tostring(var.compression_level)
    symlinks                 = var.symlinks
    architecture             = var.architecture
    node_version             = var.node_version
    python_version           = var.python_version
    site_packages            = var.site_packages
    allowed_roots            = var.allowed_roots == null ? null : jsonencode(var.allowed_roots)
  } : key => value if value != null }

  result = data.external.build.result

  # The artifacts' paths as the root module wrote their folder, not the absolute ones the
  # program reports: a checkout at another path then plans no change of filename.
  artifact_dir      = var.output_path == null ? local.output_dir : dirname(var.output_path)
  output_path       = "${local.artifact_dir}/${basename(local.result.output_path)}"
  layer_output_path = var.layer ? "${local.artifact_dir}/${basename(local.result.layer_output_path)}" : null
}

# Builds at plan time (and on every refresh; a no-change run costs a walk and a stat per file).
data "external" "build" {
  program = local.program
  query   = local.request
}

# The apply-time check. A saved plan may be applied on another machine, or after the artifact was
# deleted: `ensure` rebuilds it if it is missing or stale, then fails unless its sha256 is the one
# the plan recorded (docs/design.md, "The Terraform module").
resource "terraform_data" "artifact" {
  triggers_replace = [local.result.content_hash]

  # The command is the ensure command line itself, each word quoted for /bin/sh, so that a
  # failure shows Terraform's "Error running command 'lambdazip-tf' 'ensure' ..."; the request
  # goes through the environment.
  provisioner "local-exec" {
    command = join(" ", [
      for word in concat(local.program, compact([
        "ensure",
        "--expect-sha256", local.result.output_base64sha256,
        var.layer ? "--expect-layer-sha256" : "",
        var.layer ? local.result.layer_output_base64sha256 : "",
        "--expect-content-hash", local.result.content_hash,
        "--expect-files-hash", local.result.files_hash,
        "--expect-build-options", local.result.build_options,
        "--request-env", "LAMBDAZIP_REQUEST",
      ])) : "'${replace(word, "'", "'\\''")}'"
    ])
    environment = {
      LAMBDAZIP_REQUEST = jsonencode(local.request)
    }
  }
}
