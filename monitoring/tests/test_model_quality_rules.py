"""rules/churn-model-quality.yaml: schema, promtool check and unit tests, runbooks, live names.

The live check serves the fixture model with capture on and a store that holds
churn-monitor's numbers, and reads the real /metrics: every series an alert or
the "Model accuracy over time" dashboard reads exists there with its labels.
"""

from __future__ import annotations

import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from churn_api.capture import LIVE_METRICS
from churn_store.prediction_store import MonitorResult, open_store
from monitoring_sources import (
    BUILD,
    MONITORING,
    check_queries,
    crd_schema,
    dashboard_queries,
    exposed_labels,
    rule_groups,
    rule_queries,
    write_rules,
)
from processes import records, start_churn_api
from test_rules import coverage_problems

RULES = MONITORING / "rules" / "churn-model-quality.yaml"
TESTS = MONITORING / "tests" / "model-quality" / "churn-model-quality-test.yaml"
RUNBOOKS = MONITORING / "runbooks.md"
DASHBOARD = MONITORING / "dashboards" / "churn-model-quality.json"


@pytest.fixture(scope="module")
def rules_file() -> Path:
    return write_rules(rule_groups(RULES), BUILD / "churn-model-quality.rules.yaml")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)


def test_the_prometheusrule_matches_its_crd_schema() -> None:
    schema = crd_schema("monitoring.coreos.com/prometheusrule_v1.json")
    jsonschema.Draft7Validator(schema).validate(yaml.safe_load(RULES.read_text()))


def test_promtool_checks_and_tests_the_rules(prometheus_tools: None, rules_file: Path) -> None:
    checked = promtool("check", "rules", str(rules_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_fires_in_one_test_and_stays_quiet_in_another() -> None:
    tests = yaml.safe_load(TESTS.read_text())["tests"]
    assert coverage_problems(rule_groups(RULES), tests) == []


def test_a_weakened_floor_fails_its_promtool_test(prometheus_tools: None, tmp_path: Path) -> None:
    groups = rule_groups(RULES)
    for rule in groups[0]["rules"]:
        if rule["alert"] == "ChurnApiLiveAucBelowFloor":
            rule["expr"] = rule["expr"].replace("< 0.70", "< 0.50")
    weakened = write_rules(groups, BUILD / "churn-model-quality.rules.yaml")
    try:
        result = promtool("test", "rules", str(TESTS))
        assert result.returncode != 0
        assert "ChurnApiLiveAucBelowFloor" in result.stdout + result.stderr
    finally:
        write_rules(rule_groups(RULES), weakened)


def test_every_alert_has_a_severity_and_a_runbook_heading() -> None:
    headings = {
        line.removeprefix("## ").strip().lower()
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("## ")
    }
    for group in rule_groups(RULES):
        for rule in group["rules"]:
            name = rule["alert"]
            assert re.fullmatch(r"ChurnApi[A-Z][A-Za-z]+", name)
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["annotations"]["runbook_url"].endswith(f"runbooks.md#{name.lower()}")
            assert name.lower() in headings, f"{name}: no runbook heading"


@pytest.fixture(scope="module")
def live_loop_metrics(fixture_model: tuple[Path, str], tmp_path_factory: Any) -> str:
    """/metrics of a churn-api capturing into a store that holds churn-monitor's numbers."""
    path, sha256 = fixture_model
    logs = tmp_path_factory.mktemp("loop-logs")
    store_url = f"sqlite:///{logs / 'predictions.db'}"
    store = open_store(store_url)
    store.migrate()
    today = datetime.now(UTC).date()
    store.write_monitor_results(
        [MonitorResult(today, "1", f"window.{name}", 0.5) for name in LIVE_METRICS]
    )
    store.close()
    api = start_churn_api(path, sha256, "1", logs, capture_url=store_url)
    try:
        for record in records(3, seed=4):
            assert api.predict(record) == 200
        deadline = time.monotonic() + 120
        while "churn_api_capture_written_total 3.0" not in (text := api.metrics()):
            assert time.monotonic() < deadline, "the three predictions were never captured"
            time.sleep(0.1)
        return text
    finally:
        api.stop()


def test_every_series_the_rules_and_the_dashboard_read_is_exposed(live_loop_metrics: str) -> None:
    queries = rule_queries(rule_groups(RULES)) + [
        q for q in dashboard_queries() if f"dashboard {DASHBOARD.name} " in q.where
    ]
    assert len(queries) >= 8
    assert check_queries(queries, exposed_labels(live_loop_metrics), [], ()) == []
