"""Every metric and label the rules, dashboards and AnalysisTemplates name exists.

The reference is the live ``/metrics`` of real churn-api processes (conftest.py), plus the
scrape's target labels, the recording rules (with the labels they keep) and, for the
releases dashboard only, the Argo Rollouts controller metrics in ARGO_ROLLOUTS_METRICS.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from monitoring_sources import (
    ANALYSIS,
    ARGO_ROLLOUTS_METRICS,
    DASHBOARDS,
    REPO,
    analysis_queries,
    check_queries,
    dashboard_queries,
    exposed_labels,
    rule_groups,
    rule_queries,
)

README = REPO / "services" / "churn-api" / "README.md"


def _all_queries(dashboards: Path = DASHBOARDS, analysis: Path = ANALYSIS) -> list:
    return rule_queries(rule_groups()) + analysis_queries(analysis) + dashboard_queries(dashboards)


def test_every_metric_and_label_referenced_exists_in_the_live_metrics(live_metrics: str) -> None:
    queries = _all_queries()
    assert len(queries) > 40  # rules, three templates, every panel: nothing silently skipped
    problems = check_queries(
        queries, exposed_labels(live_metrics), rule_groups(), ARGO_ROLLOUTS_METRICS
    )
    assert problems == []


def test_the_live_metrics_are_the_services_readme_table(live_metrics: str) -> None:
    table = set(re.findall(r"^\| `(churn_api_\w+)` \|", README.read_text(), flags=re.MULTILINE))
    families = {name for name in exposed_labels(live_metrics) if name.startswith("churn_api_")}
    assert table
    assert table <= families


def test_the_controller_metrics_are_used_by_the_releases_dashboard_only() -> None:
    controller = set(ARGO_ROLLOUTS_METRICS)
    for query in rule_queries(rule_groups()) + analysis_queries():
        assert not any(name in query.expr for name in controller), query.where


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def dashboards_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "dashboards"
    shutil.copytree(DASHBOARDS, copy)
    return copy


def _edit_first_target(directory: Path, name: str, expr: str) -> None:
    path = directory / name
    dashboard = json.loads(path.read_text())
    dashboard["panels"][0]["targets"][0]["expr"] = expr
    path.write_text(json.dumps(dashboard))


def _problems(
    live_metrics: str, dashboards: Path = DASHBOARDS, analysis: Path = ANALYSIS
) -> list[str]:
    return check_queries(
        _all_queries(dashboards, analysis),
        exposed_labels(live_metrics),
        rule_groups(),
        ARGO_ROLLOUTS_METRICS,
    )


def test_a_dashboard_naming_a_metric_the_service_does_not_expose_is_named(
    live_metrics: str, dashboards_copy: Path
) -> None:
    _edit_first_target(dashboards_copy, "churn-api.json", "sum(rate(churn_api_request_total[5m]))")
    assert _problems(live_metrics, dashboards_copy) == [
        "dashboard churn-api.json panel 'Requests by route and status': "
        "metric churn_api_request_total is not exposed by churn-api"
    ]


def test_a_dashboard_grouping_by_a_label_the_metric_lacks_is_named(
    live_metrics: str, dashboards_copy: Path
) -> None:
    _edit_first_target(
        dashboards_copy, "churn-api-model.json", "sum by (outcome) (churn_api_model_ready)"
    )
    (problem,) = _problems(live_metrics, dashboards_copy)
    assert "churn-api-model.json" in problem
    assert "label outcome does not exist there" in problem


def test_a_promql_typo_in_a_dashboard_is_named(live_metrics: str, dashboards_copy: Path) -> None:
    _edit_first_target(dashboards_copy, "churn-api-releases.json", "sum(rate(rollout_info[5m])")
    (problem,) = _problems(live_metrics, dashboards_copy)
    assert problem.startswith(
        "dashboard churn-api-releases.json panel 'Rollout phase': PromQL does not parse"
    )


def test_an_analysis_query_naming_a_metric_the_service_does_not_expose_is_named(
    live_metrics: str, tmp_path: Path
) -> None:
    broken = tmp_path / "analysistemplate.yaml"
    broken.write_text(
        ANALYSIS.read_text().replace(
            "namespace_rollouts_pod_template_hash:churn_api_request_duration_seconds:histogram_quantile",
            "churn_api_request_latency_seconds",
        )
    )
    assert _problems(live_metrics, analysis=broken) == [
        "AnalysisTemplate churn-api-latency-p99 metric latency-p99: "
        "metric churn_api_request_latency_seconds is not exposed by churn-api"
    ]


def test_an_analysis_query_with_a_misspelt_target_label_is_named(
    live_metrics: str, tmp_path: Path
) -> None:
    broken = tmp_path / "analysistemplate.yaml"
    broken.write_text(
        ANALYSIS.read_text().replace(
            '{rollouts_pod_template_hash="{{args.canary-hash}}"}',
            '{pod_template_hash="{{args.canary-hash}}"}',
            1,
        )
    )
    (problem,) = _problems(live_metrics, analysis=broken)
    assert problem.startswith(
        "AnalysisTemplate churn-api-success-rate metric success-rate: label pod_template_hash"
    )
