# One variable per request key of lambdazip-tf (docs/design.md, "The request"), plus `program`.
# A test keeps these, the request model and README.md in step.

variable "source_dir" {
  description = "The function's folder (with package.json for runtime nodejs)."
  type        = string
}

variable "package_dir" {
  description = "The folder that declares the dependencies, when it is not source_dir. Node.js: the folder whose package.json and node_modules supply them (a TypeScript project's root, with source_dir its dist/); they go into the zip's top-level node_modules, and its package.json too when source_dir has none. Python: the folder whose pyproject.toml or requirements file declares them (a src/ layout). Default: source_dir."
  type        = string
  default     = null
}

variable "output_dir" {
  description = "Folder for artifacts. Default: .lambdazip in the root module. Excluded from the zip when it lies inside source_dir; never source_dir itself."
  type        = string
  default     = null
}

variable "output_path" {
  description = "Exact artifact path; overrides output_dir and the content-hash file name. The layer goes next to it, named NAME-layer.zip after the function zip's NAME.zip. Not directly in source_dir."
  type        = string
  default     = null
}

variable "name" {
  description = "Artifact base name. Default: the basename of source_dir."
  type        = string
  default     = null

  validation {
    condition     = var.name == null || can(regex("^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$", var.name))
    error_message = "name must be letters, digits, '.', '_' or '-', not starting with '.' or '-', at most 128 characters."
  }
}

variable "runtime" {
  description = "nodejs or python (crawl the installed production dependencies) or files (the folder as it is). Default: nodejs when package.json exists, else python when pyproject.toml, a requirements*.txt or installed *.dist-info folders do, else files."
  type        = string
  default     = null

  validation {
    condition     = var.runtime == null || contains(["nodejs", "python", "files"], coalesce(var.runtime, "nodejs"))
    error_message = "runtime must be \"nodejs\", \"python\" or \"files\"."
  }
}

variable "excludes" {
  description = "Extra gitignore-style patterns over archive paths, after the defaults (.git, .terraform, .env*, *.pem, id_rsa*, .npmrc, package managers' state and settings, and Terraform's configuration, tests, CLI settings, state, lock, plan, variables, crash and override files); a leading ! re-includes."
  type        = list(string)
  default     = []
}

variable "includes" {
  description = "gitignore-style patterns over archive paths that force files in, matched after the excludes. A pattern starting node_modules/ reaches files no package declares, such as generated code (Prisma's client ships with @prisma/client without one)."
  type        = list(string)
  default     = []
}

variable "exclude_packages" {
  description = "Package name globs to leave out (npm names, or Python distribution names). Default (null): the runtime's own, [\"@aws-sdk/*\"] for nodejs (the AWS SDK v3 the Node.js runtimes provide) and nothing for python (the boto3 a function declares is the one it was tested with); [] ships everything."
  type        = list(string)
  default     = null
}

variable "include_dev_dependencies" {
  description = "Also ship devDependencies."
  type        = bool
  default     = false
}

variable "layer" {
  description = "Put dependencies in a separate layer zip under nodejs/node_modules/; the function zip keeps only the function's own files."
  type        = bool
  default     = false
}

variable "node_modules_link" {
  description = "Absolute path; adds a link node_modules -> PATH to the function zip. Use /opt/nodejs/node_modules for ESM functions whose dependencies are in a layer (ESM ignores NODE_PATH)."
  type        = string
  default     = null

  validation {
    condition     = var.node_modules_link == null || startswith(coalesce(var.node_modules_link, "/"), "/")
    error_message = "node_modules_link must be an absolute path such as /opt/nodejs/node_modules."
  }
}

variable "compression_level" {
  description = "Deflate level (libdeflate), 0 (stored) to 9."
  type        = number
  default     = 6

  validation {
    condition     = var.compression_level >= 0 && var.compression_level <= 9 && floor(var.compression_level) == var.compression_level
    error_message = "compression_level must be a whole number from 0 to 9."
  }
}

variable "symlinks" {
  description = "preserve: links whose target is inside the artifact are stored as links; dereference: no links are stored, each link's target content is stored at its path, dependency links (pnpm, npm's linked installs) included."
  type        = string
  default     = "preserve"

  validation {
    condition     = contains(["preserve", "dereference"], var.symlinks)
    error_message = "symlinks must be \"preserve\" or \"dereference\"."
  }
}

variable "architecture" {
  description = "x86_64 or arm64, as aws_lambda_function.architectures spells it: the platform whose native code the zip may hold. Pass the function's: architectures = [var.architecture]."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be \"x86_64\" or \"arm64\", as aws_lambda_function.architectures spells them."
  }
}

variable "node_version" {
  description = "The Node.js major version the function runs on (\"20\", or its runtime, \"nodejs20.x\"): shipped packages whose engines.node exclude it are warned of on stderr; the build still succeeds. Default: not checked."
  type        = string
  default     = null
}

variable "python_version" {
  description = "The Python version the function runs on (\"3.12\", or its runtime, \"python3.12\"): what its compiled packages must be built for. Default: the virtual environment's version; required for a --target folder."
  type        = string
  default     = null
}

variable "site_packages" {
  description = "The folder of installed Python distributions: a pip or uv --target folder, or a virtual environment's root. Default: source_dir when it holds *.dist-info folders (pip install --target .), else .venv in package_dir or source_dir."
  type        = string
  default     = null
}

variable "allowed_roots" {
  description = "Folders outside source_dir whose files may be pulled in through links (workspace packages, npm link). Default: the nearest workspace or repository root."
  type        = list(string)
  default     = null
}

variable "program" {
  description = "The command that runs lambdazip-tf, as a list (e.g. [\"/opt/tools/bin/lambdazip-tf\"]). Default: the launcher in this module, which needs only python3 >= 3.11 on PATH: it runs lambdazip-tf from PATH when its version is this module's, and otherwise installs this module's own copy once per user. Used at plan time by the data source and at apply time by the provisioner."
  type        = list(string)
  default     = null

  validation {
    condition     = var.program == null || length(coalesce(var.program, ["x"])) > 0
    error_message = "program must name a command."
  }
}
