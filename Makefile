# The two commands of the README: `make run` and `make test`. Both set up from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# aws-sam-cli pins boto3, so it lives in a venv of its own; only `sam validate` uses it.
SAM_STAMP := .venv-sam/.installed
# checkov (IaC security checks) pins its own dependencies too; `make checkov` runs it offline.
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := .venv-checkov/.installed-$(CHECKOV_VERSION)
# The locks (docs/deploy-aws.md#locks): what each deployable installs, every file by its sha256. uv writes
# them (make lock) and pip-audit reads them (make audit), each pinned, in a venv of its own.
UV_VERSION := 0.13.8
UV_STAMP := .venv-uv/.installed-$(UV_VERSION)
PIP_AUDIT_VERSION := 2.10.1
PIP_AUDIT_STAMP := .venv-audit/.installed-$(PIP_AUDIT_VERSION)
DEV_EXTRAS := worker build local faces openstack

.PHONY: install run test test-fast soak check lint checkov package bench bench-faces clean system-deps bench-deps ami-inputs ami docs docs-build lock audit base-image-digest

install: $(STAMP)

# Everything from the repository's own files: the package's dependencies with its extras and the test
# tools, exactly as locks/dev.txt has them (each file checked against its hash), then the package itself
# (editable, so no dependency of its own: pip refuses an editable install under --require-hashes), and the
# ONNX model built once from the packaged weights (cached under ~/.cache/iraas).
$(STAMP): pyproject.toml requirements-dev.txt locks/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing IRaaS and its dependencies into $(VENV) (a few minutes the first time)..."
	$(BIN)/pip install --disable-pip-version-check -q --require-hashes -r locks/dev.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	$(BIN)/iraas model build
	touch $@

# Debian packages some tests use (they skip, saying why, where these cannot be installed), and
# the one bench.cpu_split uses (perf; it records why it did not run without it).
SYSTEM_PACKAGES := packer cloud-init chromium
BENCH_PACKAGES := linux-perf
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "note: install$$missing for $(2)"; fi
endef
system-deps:
	$(call apt_install,$(SYSTEM_PACKAGES),the tests that need them)

bench-deps:
	$(call apt_install,$(BENCH_PACKAGES),bench.cpu_split)

$(SAM_STAMP):
	test -x .venv-sam/bin/python || $(PYTHON) -m venv .venv-sam
	.venv-sam/bin/pip install --disable-pip-version-check -q aws-sam-cli==1.170.0
	touch $@

run: install
	$(BIN)/iraas up $(ARGS)

test: install $(SAM_STAMP) $(PIP_AUDIT_STAMP) system-deps check checkov docs-build
	$(BIN)/pytest $(PYTEST_ARGS)

# Lint (with import order), types and the package's layers (import-linter: nothing imports upward),
# configured in pyproject.toml; part of `make test`.
check: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo
	$(BIN)/python locks/check.py

# Unit tests only: no model, no processes.
test-fast: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

# The documentation site (mkdocs.yml, docs/), built strictly into build/site: a broken link or anchor,
# a page left out of the nav or a missing included file fails it; part of `make test`.
docs-build: install
	$(BIN)/mkdocs build --strict

# Serve the documentation site on http://127.0.0.1:8001 (make run's service has 8000), rebuilt on every edit.
DOCS_ADDR ?= 127.0.0.1:8001
docs: install
	$(BIN)/mkdocs serve --dev-addr $(DOCS_ADDR)

# The soak test for several minutes (make test runs a 60 s version): a mixed stream through `iraas up`
# with scaling and a killed worker. SOAK_S sets its length; IRAAS_SOAK_SEED=N replays a run.
SOAK_S ?= 300
soak: install
	IRAAS_SOAK_S=$(SOAK_S) $(BIN)/pytest tests/soak -s $(PYTEST_ARGS)

lint: check $(SAM_STAMP)
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam validate --lint --region us-east-1 --template-file template.yaml

$(CHECKOV_STAMP):
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --disable-pip-version-check -q checkov==$(CHECKOV_VERSION)
	touch $@

# checkov on template.yaml and on what `sam deploy` ships (the packaged template, chalice's web tier
# merged in), with .checkov.yaml: offline, and every skipped check is there with its reason.
CHECKOV_PACKAGE_DIR := build/checkov/package
checkov: install $(CHECKOV_STAMP)
	$(MAKE) --no-print-directory package PACKAGE_DIR=$(CHECKOV_PACKAGE_DIR) >/dev/null
	.venv-checkov/bin/checkov --config-file .checkov.yaml --file template.yaml
	.venv-checkov/bin/checkov --config-file .checkov.yaml --file $(CHECKOV_PACKAGE_DIR)/sam.yaml

# The locks, one per deployable, regenerated from pyproject.toml's extras, requirements-dev.txt and
# locks/*.in, each resolved for the Python it runs on: the dev venv's 3.11 (and chalice's web package,
# which is built for the Python chalice runs under), the Lambda image's 3.12 (python:3.12) and the AMI's
# 3.12 (Ubuntu 24.04). Every pin that still fits is kept; UPGRADE=1 moves them all to the newest,
# UPGRADE=name only that one. The deployables follow dev.txt's versions (-c), so what ships is what
# the tests ran. torch's CPU build comes from this machine's wheels (pip's find-links) or PyTorch's index.
TORCH_SOURCE ?= $(if $(wildcard /opt/wheels/torch-*),--find-links /opt/wheels,--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
UPGRADE ?=
UV_COMPILE = UV_PYTHON_DOWNLOADS=never .venv-uv/bin/uv pip compile --quiet --generate-hashes --python-platform x86_64-manylinux_2_28
lock: $(UV_STAMP)
	$(UV_COMPILE) --python-version 3.11.7 $(TORCH_SOURCE) \
	  $(if $(filter 1,$(UPGRADE)),--upgrade,$(if $(UPGRADE),--upgrade-package $(UPGRADE))) \
	  pyproject.toml requirements-dev.txt locks/build-system.in $(addprefix --extra ,$(DEV_EXTRAS)) -o locks/dev.txt
	$(UV_COMPILE) --python-version 3.12 -c locks/dev.txt pyproject.toml locks/build-system.in --extra worker -o locks/worker.txt
	$(UV_COMPILE) --python-version 3.12 -c locks/dev.txt pyproject.toml locks/build-system.in --extra faces -o locks/face-function.txt
	$(UV_COMPILE) --python-version 3.12 -c locks/dev.txt pyproject.toml locks/build-system.in -o locks/callback-function.txt
	$(UV_COMPILE) --python-version 3.11 -c locks/dev.txt locks/web.in -o chalice_web/requirements.txt
	.venv-uv/bin/python locks/check.py

$(UV_STAMP):
	test -x .venv-uv/bin/python || $(PYTHON) -m venv .venv-uv
	.venv-uv/bin/pip install --disable-pip-version-check -q uv==$(UV_VERSION) packaging==26.4
	touch $@

# Known vulnerabilities in what the locks install (locks/audit.py: pip-audit against PyPI's advisory data,
# or OSV with AUDIT_ARGS='-s osv'). It needs the network, so it is not part of make test; where it could
# not get an answer for every locked package it says so in one line and exits 2, never "no known
# vulnerabilities" for what it did not check.
AUDIT_ARGS ?=
audit: $(PIP_AUDIT_STAMP)
	.venv-audit/bin/python locks/audit.py --pip-audit .venv-audit/bin/pip-audit -- $(AUDIT_ARGS)

$(PIP_AUDIT_STAMP):
	test -x .venv-audit/bin/python || $(PYTHON) -m venv .venv-audit
	.venv-audit/bin/pip install --disable-pip-version-check -q pip-audit==$(PIP_AUDIT_VERSION)
	touch $@

# The functions' base image moved forward: the current digest of its tag (crane, or docker buildx), written
# into both Dockerfiles. Needs the network and one of the two tools.
LAMBDA_BASE_IMAGE := public.ecr.aws/lambda/python:3.12
base-image-digest:
	@if command -v crane >/dev/null; then digest=$$(crane digest $(LAMBDA_BASE_IMAGE)); \
	elif command -v docker >/dev/null; then digest=$$(docker buildx imagetools inspect $(LAMBDA_BASE_IMAGE) --format '{{json .Manifest.Digest}}' | tr -d '"'); \
	else echo "base-image-digest: needs crane or docker (buildx) to look up $(LAMBDA_BASE_IMAGE)" >&2; exit 1; fi; \
	case "$$digest" in sha256:????????????????????????????????????????????????????????????????) ;; \
	  *) echo "base-image-digest: no digest for $(LAMBDA_BASE_IMAGE) (got '$$digest')" >&2; exit 1;; esac; \
	sed -i "s|^FROM $(LAMBDA_BASE_IMAGE)@sha256:[0-9a-f]*|FROM $(LAMBDA_BASE_IMAGE)@$$digest|" functions/*/Dockerfile; \
	echo "functions/*/Dockerfile: FROM $(LAMBDA_BASE_IMAGE)@$$digest"

# What `sam deploy` ships: chalice's CloudFormation for the web tier merged with template.yaml.
PACKAGE_DIR ?= build/package
package: install
	rm -rf $(PACKAGE_DIR)
	cd chalice_web && AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(abspath $(BIN))/chalice package \
	  --pkg-format cloudformation --template-format yaml --merge-template ../template.yaml $(abspath $(PACKAGE_DIR))
	# template.yaml's paths (the face function's Docker build context) are relative to the repo root.
	sed -i 's|^\(\s*DockerContext:\) \.$$|\1 $(shell realpath -m --relative-to=$(PACKAGE_DIR) .)|' $(PACKAGE_DIR)/sam.yaml
	# What template.yaml cannot say about chalice's API: POST / follows OpenCourseEndpoint; the ApiKeyId output.
	$(BIN)/python -m iraas.cli.package $(PACKAGE_DIR)/sam.yaml
	$(BIN)/cfn-lint $(PACKAGE_DIR)/sam.yaml
	@echo "packaged into $(PACKAGE_DIR); deploy with:"
	@echo "  sam build --template-file $(PACKAGE_DIR)/sam.yaml && sam deploy --config-file $(abspath samconfig.toml) --resolve-image-repos"

# What the AMI recipe uploads: the source tree and the tested ONNX model (see worker_ami/). With
# OWN_MODEL=/path/to/NAME.onnx, also a model of your own (checked first, with its NAME.labels.txt and
# NAME.json if there is one), which the workers then serve: docs/models.md.
OWN_MODEL ?=
ami-inputs: install
	rm -rf build/ami && mkdir -p build/ami/models
	git archive --format=tar.gz -o build/ami/iraas-src.tar.gz HEAD
	cp "$$($(BIN)/iraas model build)" build/ami/models/
ifneq ($(OWN_MODEL),)
	IRAAS_MODEL="$(abspath $(OWN_MODEL))" $(BIN)/iraas model build >/dev/null
	cp "$(OWN_MODEL)" "$(OWN_MODEL:.onnx=.labels.txt)" build/ami/models/
	if [ -f "$(OWN_MODEL:.onnx=.json)" ]; then cp "$(OWN_MODEL:.onnx=.json)" build/ami/models/; fi
endif

ami: ami-inputs
	packer build $(if $(OWN_MODEL),-var own_model=$(notdir $(OWN_MODEL))) worker_ami/worker.pkr.hcl

# Every benchmark (see bench/run.py), then bench/out/bench.json and bench/out/bench.png, and the
# benchmarks page's figures (docs/bench-figures.md, docs/scaling-burst.png: commit them).
bench: install bench-deps
	$(BIN)/python -m bench.run $(ARGS)

# The face pipeline alone (also part of `make bench`): bench/out/faces.json.
bench-faces: install
	$(BIN)/python -m bench.faces $(ARGS)

clean:
	rm -rf $(VENV) .venv-sam .venv-checkov .venv-uv .venv-audit build .iraas .pytest_cache
