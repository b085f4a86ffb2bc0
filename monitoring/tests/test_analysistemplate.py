"""The AnalysisTemplates: schema, the names and arguments of docs/contracts.md, guards."""

from __future__ import annotations

import math
from typing import Any

import jsonschema
import pytest
import yaml
from argo_conditions import phase
from monitoring_sources import ANALYSIS, analysis_metrics, crd_schema, rule_groups

CONTRACT = {
    "churn-api-success-rate": ["canary-hash"],
    "churn-api-latency-p99": ["canary-hash"],
    "churn-api-prediction-shift": ["canary-hash", "stable-hash"],
}
ADDRESS = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
METRICS = [
    pytest.param(template, metric, id=template["metadata"]["name"])
    for template, metric in analysis_metrics()
]


def test_the_templates_are_the_three_of_the_contract_with_their_arguments() -> None:
    templates = [t for t in yaml.safe_load_all(ANALYSIS.read_text()) if t]
    assert {
        t["metadata"]["name"]: [a["name"] for a in t["spec"]["args"]] for t in templates
    } == CONTRACT


def test_every_template_matches_the_analysistemplate_crd_schema() -> None:
    validator = jsonschema.Draft7Validator(crd_schema("argoproj.io/analysistemplate_v1alpha1.json"))
    for template in yaml.safe_load_all(ANALYSIS.read_text()):
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(template)]
        assert errors == [], template["metadata"]["name"]


@pytest.mark.parametrize(("template", "metric"), METRICS)
def test_every_metric_has_both_conditions_limits_and_a_timeout(
    template: dict[str, Any], metric: dict[str, Any]
) -> None:
    assert metric["successCondition"]
    assert metric["failureCondition"]
    assert int(metric["failureLimit"]) >= 0
    assert int(metric["count"]) > 0
    prometheus = metric["provider"]["prometheus"]
    assert prometheus["address"] == ADDRESS
    assert 0 < prometheus["timeout"] <= 60


@pytest.mark.parametrize(("template", "metric"), METRICS)
def test_no_data_and_nan_are_inconclusive_never_a_pass_or_an_error(
    template: dict[str, Any], metric: dict[str, Any]
) -> None:
    for empty in ([], [math.nan]):
        assert (
            phase(metric["successCondition"], metric["failureCondition"], empty) == "Inconclusive"
        )


@pytest.mark.parametrize(("template", "metric"), METRICS)
def test_every_query_reads_a_recording_rule(
    template: dict[str, Any], metric: dict[str, Any]
) -> None:
    records = {
        rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule
    }
    query = metric["provider"]["prometheus"]["query"]
    assert any(record in query for record in records), "one definition: read the recording rule"


@pytest.mark.parametrize(
    ("name", "healthy", "failing"),
    [
        ("churn-api-success-rate", [0.9995], [0.97]),
        ("churn-api-latency-p99", [0.08], [0.6]),
        ("churn-api-prediction-shift", [0.05], [0.6]),
    ],
)
def test_each_template_passes_a_healthy_value_and_fails_a_bad_one(
    name: str, healthy: list[float], failing: list[float]
) -> None:
    (metric,) = [m for t, m in analysis_metrics() if t["metadata"]["name"] == name]
    conditions = metric["successCondition"], metric["failureCondition"]
    assert phase(*conditions, healthy) == "Successful"
    assert phase(*conditions, failing) == "Failed"
