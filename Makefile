# Every target bootstraps .venv itself: a fresh clone needs only `make dev` or `make test`.
PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt layers/common/requirements.txt | cksum | cut -d' ' -f1)
SAM := $(BIN)/sam
export SAM_CLI_TELEMETRY := 0

.PHONY: dev test test-fast lint format build validate bench invoke openapi clean

$(STAMP): requirements-dev.txt layers/common/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

dev: $(STAMP) ## serve the whole API on http://127.0.0.1:3000 with an embedded AWS
	$(BIN)/python -m local.gateway

invoke: $(STAMP) ## run one function with an event file: make invoke FN=SessionsFunction EVENT=events/sessions_list.json
	$(BIN)/python -m local.invoke $(FN) $(EVENT)

test: $(STAMP) ## unit, integration and end-to-end tests
	$(BIN)/python -m pytest -q

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

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
