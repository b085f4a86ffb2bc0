# Thin router: every target calls a tool or a script that lives beside what it checks.
# `make help` lists the targets. Everything installs itself into .local/ and .venv/ on first use.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# renovate: datasource=pypi depName=uv
UV_VERSION := 0.13.8
# renovate: datasource=pypi depName=checkov
CHECKOV_VERSION := 3.3.30

TOOLS := .local/tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
RUN := $(VENV)/bin
# The JSON schemas of custom resources; point it at a fresh download (`make schemas`) outside this layout.
CRD_SCHEMAS ?= $(firstword $(wildcard ../shared/schemas/crds) .local/schemas/crds)
export CRD_SCHEMAS
export UV_LOCKED := 1
export UV_PYTHON_DOWNLOADS := never
# mlflow must never unpickle a model it did not write itself.
export MLFLOW_ALLOW_PICKLE_DESERIALIZATION := false
# checkov runs in its own pinned environment: its dependencies conflict with the workspace's.
CHECKOV := $(UV) tool run --quiet --from checkov==$(CHECKOV_VERSION) checkov
export CHECKOV

.PHONY: help
help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml services/churn-api/pyproject.toml workflows/pyproject.toml
	$(UV) sync --all-packages --all-groups --quiet
	@touch $@

.PHONY: setup
setup: $(VENV)/.synced ## Install uv and the workspace (.venv)

# ----------------------------------------------------------------------------- main job
.PHONY: demo
demo: setup ## Train, validate, gate, register, promote, serve and predict, all on this machine
	$(RUN)/churn-workflows demo

.PHONY: serve
serve: setup ## Serve churn-api on 127.0.0.1:8000 with the model `make demo` last promoted
	$(RUN)/churn-api serve-local

.PHONY: mlflow-ui
mlflow-ui: setup ## Open the MLflow UI on the demo's store (127.0.0.1:5000)
	$(RUN)/mlflow ui --backend-store-uri sqlite:///.local/mlflow/mlflow.db --host 127.0.0.1 --port 5000

# ----------------------------------------------------------------------------- checks
.PHONY: test
test: lint test-service test-workflows render-check validate test-policies test-rules test-infra test-ci ## Run every check

.PHONY: check
check: test

.PHONY: lint
lint: setup ## ruff check + format check, mypy strict on the service and the pipeline
	$(RUN)/ruff check .
	$(RUN)/ruff format --check .
	$(RUN)/mypy services/churn-api/src workflows/src

.PHONY: test-service
test-service: setup ## Service tests: real HTTP server, schemathesis, model loading
	$(RUN)/pytest -n 2 services/churn-api/tests

.PHONY: test-workflows
test-workflows: setup ## Pipeline tests: steps, real MLflow on SQLite, promotion on a real git repo
	$(RUN)/pytest -n 2 workflows/tests

.PHONY: render
render: setup ## Write the generated files: workflows/manifests (Hera) and monitoring/dashboards
	$(PY) -m churn_workflows.render
	$(PY) monitoring/generate_dashboards.py

.PHONY: render-check
render-check: setup ## Fail when a generated file differs from a fresh render
	$(PY) -m churn_workflows.render --check
	$(PY) monitoring/generate_dashboards.py --check

.PHONY: validate
validate: setup ## Render every kustomization, validate against schemas, run checkov
	$(PY) platform/tests/validate_manifests.py
	$(RUN)/pytest -n 2 platform/tests

.PHONY: test-policies
test-policies: setup ## Evaluate every Kyverno policy's CEL on its .kyverno-test fixtures
	$(RUN)/pytest policies

.PHONY: test-rules
test-rules: setup ## promtool check/test rules, and a real Prometheus scraping a real churn-api
	$(RUN)/pytest monitoring

.PHONY: test-infra
test-infra: setup ## Parse every .tf file, check types/descriptions and controls, run checkov
	$(RUN)/pytest infra/opentofu

.PHONY: test-ci
test-ci: setup ## actionlint, zizmor and checkov on .github, renovate.json against its schema
	$(RUN)/pytest .github

.PHONY: bench
bench: setup ## Benchmarks: HTTP throughput table, in-process scoring, pipeline wall time
	$(PY) services/churn-api/bench/http_bench.py
	$(RUN)/pytest services/churn-api/bench workflows/bench --benchmark-only -p no:xdist

.PHONY: schemas
schemas: ## Download the CRD JSON schemas into .local/schemas/crds (needs internet)
	bash platform/tests/download-schemas.sh .local/schemas/crds

.PHONY: clean
clean: ## Remove .local/ (demo store, tools) and build/
	rm -rf .local build
