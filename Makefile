# Every target bootstraps .venv itself: a fresh clone needs only `make dev` or `make test`.
PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt layers/common/requirements.txt functions/exports/requirements.txt | cksum | cut -d' ' -f1)
SAM := $(BIN)/sam
BENCH_SUM := $(shell cksum < benchmarks/requirements.txt | cut -d' ' -f1)
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed-$(shell cksum < requirements-tools.txt | cut -d' ' -f1)
SWAGGER_UI_VERSION := 5.35.0
export SAM_CLI_TELEMETRY := 0
# What runs locally is what `sam build` ships: the template built for this machine's architecture, run by a
# Python with only the Lambda runtime's own packages (local/runtime-requirements.txt).
# sam runs packaging/Makefile in a scratch directory, where pyenv's .python-version is not seen: hand it the interpreter.
LAYER_BUILD_ENV = PYTHON=$(shell $(PYTHON) -c 'import sys; print(sys.executable)')
HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
LOCAL_TEMPLATE := .local/build/template.yaml
SOURCES := template.yaml $(shell find functions layers packaging -type f -not -path '*/__pycache__/*')
RUNTIME := .local/runtime
RUNTIME_STAMP := $(RUNTIME)/.installed-$(shell cksum < local/runtime-requirements.txt | cut -d' ' -f1)

.PHONY: help dev dev-reset local-aws test test-fast lint format build local-build validate bench invoke openapi openapi-check scan \
	audit swagger-ui clean

help: ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | expand -t 16

$(STAMP): requirements-dev.txt layers/common/requirements.txt functions/exports/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

$(RUNTIME_STAMP): local/runtime-requirements.txt
	@rm -rf $(RUNTIME)
	$(PYTHON) -m venv $(RUNTIME)
	$(RUNTIME)/bin/python -m pip install --quiet --disable-pip-version-check -r local/runtime-requirements.txt
	@touch $@

$(LOCAL_TEMPLATE): $(STAMP) $(SOURCES)
	$(LAYER_BUILD_ENV) LAMBDA_ARCH=$(HOST_ARCH) $(SAM) build --build-dir .local/build --cache-dir .local/build-cache \
		--parameter-overrides Architecture=$(HOST_ARCH)
	@touch $@

local-build: $(LOCAL_TEMPLATE) $(RUNTIME_STAMP) ## sam build for this machine (make dev serves it, and reloads a rebuild)

dev: $(STAMP) local-build ## serve the whole API on http://127.0.0.1:3000 (live: ws://127.0.0.1:3001/live) with an embedded AWS
	ModelProvider=local $(BIN)/python -m local.gateway --template $(LOCAL_TEMPLATE) --state-file .local/stack.json \
		--data-dir .local/data

local-aws: $(STAMP) ## only the embedded AWS, on port 4566, and .local/env.json for sam local --env-vars (Docker)
	$(BIN)/python -m local.sam_local

dev-reset: ## forget what make dev stored (its tables and buckets, kept in .local/data across restarts)
	rm -rf .local/data .local/data.saving .local/logs

invoke: $(STAMP) local-build ## run one function with an event file: make invoke FN=SessionsFunction EVENT=events/sessions_list.json
	ModelProvider=local $(BIN)/python -m local.invoke $(FN) $(EVENT) --template $(LOCAL_TEMPLATE) \
		--state-file .local/stack.json

test: $(STAMP) local-build ## unit, integration and end-to-end tests (the end-to-end ones against the build)
	$(BIN)/python -m pytest -q -n auto

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/integration

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/common/sessions_api local

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

validate: $(STAMP) ## the template as CloudFormation and SAM see it
	$(SAM) validate --lint
	$(BIN)/cfn-lint template.yaml

build: $(STAMP) ## sam build for AWS (arm64), no Docker needed
	$(LAYER_BUILD_ENV) $(SAM) build

bench: $(STAMP) local-build ## side by side with the alternatives: benchmarks/results.md and plots (benchmark-only packages too)
	@test -f $(VENV)/.bench-$(BENCH_SUM) || { $(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt \
		&& rm -f $(VENV)/.bench-* && touch $(VENV)/.bench-$(BENCH_SUM); }
	$(BIN)/python -m benchmarks

$(TOOLS_STAMP): requirements-tools.txt
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt
	@rm -f $(TOOLS)/.installed-* && touch $@

openapi: $(STAMP) ## write openapi.json and functions/docs/openapi.json from the code of every function
	PYTHONPATH=layers/common:. $(BIN)/python -m tools.openapi

openapi-check: $(STAMP) ## fail when the committed spec is not what the code generates
	PYTHONPATH=layers/common:. $(BIN)/python -m tools.openapi --check

scan: $(STAMP) $(TOOLS_STAMP) audit ## template and code scanners (offline), then the dependency audit
	$(BIN)/cfn-lint template.yaml -a cfn_lint_serverless.rules
	$(TOOLS)/bin/checkov -f template.yaml --framework cloudformation --skip-download --quiet --compact
	$(BIN)/bandit -c pyproject.toml -r layers functions local tools -q

audit: $(STAMP) ## pip-audit of the layer's and every function's requirements (AUDIT_STRICT=1: unchecked fails)
	$(BIN)/python -m tools.audit

swagger-ui: ## re-vendor Swagger UI from npm (swagger-ui-dist@$(SWAGGER_UI_VERSION)) into functions/docs/swagger_ui
	rm -rf .swagger-ui && mkdir -p .swagger-ui
	cd .swagger-ui && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) && tar xzf swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz
	cd .swagger-ui/package && cp LICENSE NOTICE swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css \
		favicon-16x16.png favicon-32x32.png ../../functions/docs/swagger_ui/
	rm -rf .swagger-ui

clean:
	rm -rf .aws-sam .local .pytest_cache .mypy_cache .ruff_cache .venv-tools
