"""The PrometheusRule: schema, conventions, ``promtool check rules`` and ``promtool test rules``.

Each promtool test group runs on its own (in parallel, two at a time), so that pytest names
every group by its sentence and the summary lists, per alert, the groups that exercise it.
"""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from monitoring_sources import (
    ALERT_TESTS,
    BUILD,
    MONITORING,
    RULES,
    crd_schema,
    rule_groups,
    write_rules,
)

TEST_FILES = sorted((MONITORING / "tests").glob("*-test.yaml"))
RUNBOOKS = MONITORING / "runbooks.md"
SCHEMA = "monitoring.coreos.com/prometheusrule_v1.json"
RECORD_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
ALERT_NAME = re.compile(r"^ChurnApi[A-Z][A-Za-z]+$")


def _groups_of_tests() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, group) for path in TEST_FILES for group in yaml.safe_load(path.read_text())["tests"]
    ]


def _alerts(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)


def run_group(
    path: Path, group: dict[str, Any], rules: Path, workdir: Path
) -> subprocess.CompletedProcess[str]:
    """``promtool test rules`` on a file holding only ``group``, against ``rules``."""
    document = yaml.safe_load(path.read_text())
    document["rule_files"] = [str(rules)]
    document["tests"] = [group]
    one = workdir / f"{abs(hash((path.name, group['name'])))}.yaml"
    one.write_text(yaml.safe_dump(document, sort_keys=False))
    return promtool("test", "rules", str(one))


def coverage_problems(groups: list[dict[str, Any]], tests: list[dict[str, Any]]) -> list[str]:
    """Alerts without a test where they fire, or without one where they stay quiet."""
    fires: set[str] = set()
    quiet: set[str] = set()
    for group in tests:
        for case in group.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    problems = []
    for name in dict.fromkeys(rule["alert"] for rule in _alerts(groups)):
        if name not in fires:
            problems.append(f"{name} has no promtool test where it fires")
        if name not in quiet:
            problems.append(f"{name} has no promtool test where it stays quiet")
    return problems


@pytest.fixture(scope="session")
def group_results(
    prometheus_tools: None, rules_file: Path
) -> dict[str, subprocess.CompletedProcess[str]]:
    workdir = BUILD / "tests"
    workdir.mkdir(parents=True, exist_ok=True)
    cases = _groups_of_tests()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = pool.map(lambda case: run_group(*case, rules_file, workdir), cases)
        return {group["name"]: result for (_, group), result in zip(cases, results, strict=True)}


def test_the_prometheusrule_matches_its_crd_schema() -> None:
    schema = crd_schema(SCHEMA)
    jsonschema.Draft7Validator(schema).validate(yaml.safe_load(RULES.read_text()))


def test_promtool_check_rules_accepts_the_extracted_rules(
    prometheus_tools: None, rules_file: Path
) -> None:
    result = promtool("check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_test_files_load_the_extracted_rules_and_evaluate_groups_in_file_order(
    rules_file: Path,
) -> None:
    order = [group["name"] for group in rule_groups()]
    for path in TEST_FILES:
        document = yaml.safe_load(path.read_text())
        for name in document["rule_files"]:
            assert (path.parent / name).resolve() == rules_file.resolve(), path
        assert document["group_eval_order"] == order, path


@pytest.mark.parametrize(
    ("path", "group"),
    [pytest.param(path, group, id=group["name"]) for path, group in _groups_of_tests()],
)
def test_promtool_test_group(
    path: Path, group: dict[str, Any], group_results: dict[str, Any]
) -> None:
    result = group_results[group["name"]]
    outcome = "passed" if result.returncode == 0 else "FAILED"
    for alert in dict.fromkeys(case["alertname"] for case in group.get("alert_rule_test", [])):
        ALERT_TESTS.setdefault(alert, []).append((group["name"], outcome))
    assert result.returncode == 0, f"{path.name}: {group['name']}\n{result.stdout}{result.stderr}"


def test_every_alert_has_a_test_where_it_fires_and_one_where_it_stays_quiet() -> None:
    tests = [group for _, group in _groups_of_tests()]
    assert coverage_problems(rule_groups(), tests) == []


def test_recording_rules_come_first_and_follow_level_metric_operation() -> None:
    kinds = ["alert" if "alert" in rule else "record" for g in rule_groups() for rule in g["rules"]]
    assert kinds == sorted(kinds, key=lambda kind: kind == "alert"), (
        "a recording rule after an alert"
    )
    for group in rule_groups():
        for rule in group["rules"]:
            if "record" in rule:
                assert RECORD_NAME.match(rule["record"]), rule["record"]


def test_every_alert_has_a_name_severity_summary_description_and_runbook_heading() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in _alerts(rule_groups()):
        name = rule["alert"]
        assert ALERT_NAME.match(name), name
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        assert annotations["description"].strip(), name
        url, _, anchor = annotations["runbook_url"].partition("#")
        assert url.endswith("/monitoring/runbooks.md"), name
        assert anchor == name.lower(), name
        assert anchor in headings, f"{name}: no runbook heading {anchor}"


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def broken_rules(tmp_path: Path) -> tuple[list[dict[str, Any]], Path]:
    return rule_groups(), tmp_path / "broken.rules.yaml"


def test_a_promql_typo_fails_promtool_check_rules_naming_the_rule(
    prometheus_tools: None, broken_rules: tuple[list[dict[str, Any]], Path]
) -> None:
    groups, path = broken_rules
    rule = groups[0]["rules"][0]
    rule["expr"] = rule["expr"].replace("rate(", "rate((", 1)
    result = promtool("check", "rules", str(write_rules(groups, path)))
    assert result.returncode != 0
    assert rule["record"] in result.stdout + result.stderr


def test_an_alert_without_tests_is_named(broken_rules: tuple[list[dict[str, Any]], Path]) -> None:
    groups, _ = broken_rules
    groups[-1]["rules"].append({"alert": "ChurnApiUntested", "expr": "vector(1)"})
    tests = [group for _, group in _groups_of_tests()]
    assert coverage_problems(groups, tests) == [
        "ChurnApiUntested has no promtool test where it fires",
        "ChurnApiUntested has no promtool test where it stays quiet",
    ]


def test_a_weakened_alert_fails_its_promtool_test(
    prometheus_tools: None, broken_rules: tuple[list[dict[str, Any]], Path]
) -> None:
    groups, path = broken_rules
    for rule in _alerts(groups):
        if rule["alert"] == "ChurnApiModelNotLoaded":
            rule["expr"] = "churn_api_model_ready == 0"  # loses "unless a failure was recorded"
    (test_path, group), *_ = [
        (p, g)
        for p, g in _groups_of_tests()
        if g["name"].startswith("ChurnApiModelLoadFailed fires")
    ]
    result = run_group(test_path, group, write_rules(groups, path), path.parent)
    assert result.returncode != 0
    assert "ChurnApiModelNotLoaded" in result.stdout + result.stderr
