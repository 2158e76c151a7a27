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

.PHONY: dev test test-fast lint format build validate bench invoke openapi openapi-check scan audit swagger-ui clean

$(STAMP): requirements-dev.txt layers/common/requirements.txt functions/exports/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

dev: $(STAMP) ## serve the whole API on http://127.0.0.1:3000 with an embedded AWS
	ModelProvider=local $(BIN)/python -m local.gateway

invoke: $(STAMP) ## run one function with an event file: make invoke FN=SessionsFunction EVENT=events/sessions_list.json
	ModelProvider=local $(BIN)/python -m local.invoke $(FN) $(EVENT)

test: $(STAMP) ## unit, integration and end-to-end tests
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

build: $(STAMP) ## sam build, no Docker needed
	$(SAM) build

bench: $(STAMP) ## side by side with the alternatives: benchmarks/results.md and plots (benchmark-only packages too)
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
