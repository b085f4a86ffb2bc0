"""The delivery alerts (rules/delivery.yaml): schema, promtool, coverage, runbooks, metric names.

The metrics are those of the exporters the platform's charts scrape; each name and label the
rules use must be one the exporter documents (the allow-list below says where from).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any, Final

import jsonschema
import pytest
import yaml
from monitoring_sources import BUILD, MONITORING, Query, check_queries, crd_schema, write_rules

DELIVERY: Final = MONITORING / "rules" / "delivery.yaml"
TESTS: Final = MONITORING / "tests" / "delivery.promtool.yaml"
RUNBOOKS: Final = MONITORING / "runbooks.md"
KUSTOMIZATION: Final = MONITORING / "kustomization.yaml"

# The exporters' metrics the rules read, with every label they carry.
EXPORTER_METRICS: Final = {
    # Argo CD application controller (docs/operator-manual/metrics.md).
    "argocd_app_info": frozenset(
        {
            "namespace",
            "name",
            "project",
            "repo",
            "dest_server",
            "dest_namespace",
            "sync_status",
            "health_status",
            "operation",
        }
    ),
    # Argo Rollouts controller (controller/metrics/prommetrics.go).
    "rollout_info": frozenset({"namespace", "name", "strategy", "traffic_router", "phase"}),
    "analysis_run_info": frozenset({"namespace", "name", "phase"}),
    # Argo Workflows controller, v3.6 and later (docs/metrics.md, `total_count`).
    "argo_workflows_total_count": frozenset({"namespace", "phase"}),
    # Kyverno admission controller (docs/monitoring/admission-requests).
    "kyverno_admission_requests_total": frozenset(
        {
            "request_allowed",
            "request_webhook",
            "resource_kind",
            "resource_namespace",
            "resource_request_operation",
        }
    ),
}
SCRAPE: Final = frozenset({"job", "instance", "pod", "service", "container", "endpoint"})
ALERTS: Final = {
    "ArgoCdApplicationDegraded",
    "ArgoCdApplicationOutOfSync",
    "RolloutAborted",
    "RolloutPaused",
    "AnalysisRunInconclusive",
    "ArgoWorkflowFailed",
    "KyvernoAdmissionDenied",
}


def _groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(DELIVERY.read_text())["spec"]["groups"]
    return groups


def _alerts() -> list[dict[str, Any]]:
    return [rule for group in _groups() for rule in group["rules"] if "alert" in rule]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def delivery_rules(prometheus_tools: None) -> Path:
    return write_rules(_groups(), BUILD / "delivery.rules.yaml")


def test_the_rule_file_matches_the_prometheusrule_schema_and_is_synced() -> None:
    schema = crd_schema("monitoring.coreos.com/prometheusrule_v1.json")
    jsonschema.Draft7Validator(schema).validate(yaml.safe_load(DELIVERY.read_text()))
    resources = yaml.safe_load(KUSTOMIZATION.read_text())["resources"]
    assert str(DELIVERY.relative_to(MONITORING)) in resources


def test_the_delivery_system_has_its_alerts() -> None:
    assert {rule["alert"] for rule in _alerts()} == ALERTS


def test_promtool_check_rules_accepts_them(delivery_rules: Path) -> None:
    result = _promtool("check", "rules", str(delivery_rules))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_tests_pass(delivery_rules: Path) -> None:
    document = yaml.safe_load(TESTS.read_text())
    assert [(TESTS.parent / f).resolve() for f in document["rule_files"]] == [
        delivery_rules.resolve()
    ]
    result = _promtool("test", "rules", str(TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_promtool_case_where_it_fires_and_one_where_it_stays_quiet() -> None:
    fires, quiet = set(), set()
    for group in yaml.safe_load(TESTS.read_text())["tests"]:
        for case in group.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert ALERTS - fires == set()
    assert ALERTS - quiet == set()


def test_every_alert_has_severity_summary_description_and_a_runbook_heading() -> None:
    headings = {
        line.removeprefix("## ").strip().lower()
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in _alerts():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"]
        assert annotations["description"]
        anchor = annotations["runbook_url"].rsplit("#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert anchor in headings, f"runbooks.md has no section {rule['alert']}"


def test_the_rules_read_only_metrics_and_labels_the_exporters_expose() -> None:
    allowed = {name: labels | SCRAPE for name, labels in EXPORTER_METRICS.items()}
    queries = [Query(f"alert {rule['alert']}", rule["expr"]) for rule in _alerts()]
    assert check_queries(queries, {}, _groups(), allowed) == []


def test_the_metric_check_catches_a_misspelt_metric_and_label() -> None:
    allowed = {name: labels | SCRAPE for name, labels in EXPORTER_METRICS.items()}
    wrong = [
        Query("misspelt metric", 'argocd_application_info{health_status="Degraded"} == 1'),
        Query("misspelt label", 'max by (rollout) (rollout_info{phase="Degraded"})'),
    ]
    problems = check_queries(wrong, {}, _groups(), allowed)
    assert any("argocd_application_info" in p for p in problems), problems
    assert any(re.search(r"\brollout\b", p) for p in problems), problems
