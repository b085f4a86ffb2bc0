"""Rendered churn-monitor, its CronWorkflow, churn-outcomes, churn-promote: wired for the loop."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from churn_workflows.render import render

sys.path.insert(0, str(Path(__file__).parent))
from test_manifests_in_sync import _schemas

NAMES = [
    "churn-monitor.yaml",
    "churn-outcomes.yaml",
    "churn-monitor-daily.yaml",
]


@pytest.mark.parametrize("name", NAMES)
def test_the_loop_manifests_validate_against_the_crd_schemas(name: str) -> None:
    document = yaml.safe_load(render()[name])
    schema_file = _schemas() / "argoproj.io" / f"{document['kind'].lower()}_v1alpha1.json"
    jsonschema.validate(document, json.loads(schema_file.read_text()))


def test_the_monitor_submits_churn_train_on_its_snapshot_with_the_reason() -> None:
    spec = yaml.safe_load(render()["churn-monitor.yaml"])["spec"]
    templates = {t["name"]: t for t in spec["templates"]}
    monitor = templates["monitor"]["container"]
    assert monitor["command"] == ["python", "-m", "churn_workflows.steps.monitor"]
    store = next(e for e in monitor["env"] if e["name"] == "CHURN_CAPTURE_URL")
    assert store["valueFrom"]["secretKeyRef"] == {"key": "url", "name": "churn-predictions-db"}
    submitted = json.loads(templates["submit-train"]["resource"]["manifest"])
    assert templates["submit-train"]["resource"]["action"] == "create"
    assert submitted["kind"] == "Workflow"
    assert submitted["spec"]["workflowTemplateRef"] == {"name": "churn-train"}
    arguments = {p["name"]: p["value"] for p in submitted["spec"]["arguments"]["parameters"]}
    assert arguments == {
        "environment": "{{inputs.parameters.environment}}",
        "data-source": "{{inputs.parameters.snapshot}}",
        "reason": "{{inputs.parameters.reason}}",
        "drift": "report",  # the drift that started the run is reported, not a refusal
    }
    tasks = {t["name"]: t for t in templates["monitor-and-retrain"]["dag"]["tasks"]}
    assert tasks["retrain"]["when"] == (
        "{{tasks.monitor.outputs.parameters.retrain}} == true && "
        "{{workflow.parameters.retrain}} == true"
    )
    passed = {p["name"]: p["value"] for p in tasks["retrain"]["arguments"]["parameters"]}
    assert passed["snapshot"] == "{{tasks.monitor.outputs.parameters.snapshot}}"
    assert passed["environment"] == "{{workflow.parameters.environment}}"
    # churn-train accepts what the monitor passes.
    train = yaml.safe_load(render()["churn-train.yaml"])["spec"]
    train_params = {p["name"] for p in train["arguments"]["parameters"]}
    assert set(arguments) <= train_params


def test_the_daily_monitor_runs_the_monitor_template() -> None:
    """One CronWorkflow; each environment's overlay sets the environment it watches."""
    cron = yaml.safe_load(render()["churn-monitor-daily.yaml"])["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    spec = cron["workflowSpec"]
    assert spec["workflowTemplateRef"] == {"name": "churn-monitor"}
    assert spec["arguments"]["parameters"] == [{"name": "environment", "value": "dev"}]
    assert spec["securityContext"]["runAsNonRoot"] is True


def test_the_promotion_reads_the_store_when_its_secret_exists_and_passes_the_pin_choice() -> None:
    """churn-train's promote is churn-promote's: the live shadow evidence needs the store."""
    spec = yaml.safe_load(render()["churn-promote.yaml"])["spec"]
    templates = {t["name"]: t for t in spec["templates"]}
    promote = templates["promote"]["container"]
    store = next(e for e in promote["env"] if e["name"] == "CHURN_CAPTURE_URL")
    # Optional: without the Secret the pod starts, and the PR says there is no live evidence.
    assert store["valueFrom"]["secretKeyRef"] == {
        "key": "url",
        "name": "churn-predictions-db",
        "optional": True,
    }
    assert "{{inputs.parameters.pin-as}}" in promote["args"]
    train = yaml.safe_load(render()["churn-train.yaml"])["spec"]
    (pin_as,) = (p for p in train["arguments"]["parameters"] if p["name"] == "pin-as")
    assert (pin_as["value"], pin_as["enum"]) == ("model", ["model", "shadow"])
    (dag,) = (t["dag"] for t in train["templates"] if "dag" in t)
    tasks = {t["name"]: t for t in dag["tasks"]}
    passed = {p["name"]: p["value"] for p in tasks["promote"]["arguments"]["parameters"]}
    assert passed["pin-as"] == "{{workflow.parameters.pin-as}}"
