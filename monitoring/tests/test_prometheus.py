"""A real Prometheus scrapes real churn-api processes; the canary analysis runs on it.

Four churn-api processes on 127.0.0.1, each scraped every second with the target labels of
docs/contracts.md and its own pod-template hash:

- ``stable`` and ``canary``: the fixture model, random customers from the same seeded mix;
- ``broken``: a pin whose digest does not match, so every prediction is a 503;
- ``shifted``: the fixture model, scoring only loyal, low-risk customers.

Prometheus loads the extracted rules. After a short load, every AnalysisTemplate query runs
with its arguments filled in, and its conditions are evaluated as Argo Rollouts does: the
healthy canary passes all three, ``broken`` fails the success rate, ``shifted`` fails the
prediction shift. Everything is stopped at the end.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argo_conditions import phase
from monitoring_sources import HEALTHY_CANARY_VERDICTS, analysis_metrics, substitute_args
from processes import ChurnApi, Prometheus, pods_by_role, records

pytestmark = pytest.mark.slow

LOAD_SECONDS = 12.0
# Loyal customers only: the model scores them near 0, far from the usual mix.
LOW_RISK = {"tenure": 70, "contract_type": "two-year", "support_tickets": 0}


def _load(api: ChurnApi, customers: list[dict[str, Any]], stop: float) -> None:
    index = 0
    while time.monotonic() < stop:
        api.predict(customers[index % len(customers)])
        index += 1
        time.sleep(0.02)


def _wait_for(prometheus: Prometheus, expr: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        values = prometheus.query(expr)
        if values and not any(math.isnan(v) for v in values):
            return
        time.sleep(0.5)
    raise AssertionError(f"no value for {expr} after {timeout}s")


@pytest.fixture(scope="module")
def measured(
    prometheus_tools: None,
    rules_file: Path,
    fixture_model: tuple[Path, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Prometheus, dict[str, str]]]:
    """Prometheus after the load, and each instance's pod-template hash by role."""
    path, sha256 = fixture_model
    workdir = tmp_path_factory.mktemp("prometheus")
    wrong = hashlib.sha256(b"not the fixture model").hexdigest()
    pins = {
        "stable": (sha256, True),
        "canary": (sha256, True),
        "broken": (wrong, False),
        "shifted": (sha256, True),
    }
    with pods_by_role(path, pins, rules_file, workdir, "7f9c") as (apis, hashes, prometheus):
        customers = {
            "stable": records(200, seed=11),
            "canary": records(200, seed=12),
            "broken": records(200, seed=13),
            "shifted": records(200, seed=14, **LOW_RISK),
        }
        stop = time.monotonic() + LOAD_SECONDS
        threads = [
            threading.Thread(target=_load, args=(apis[role], customers[role], stop))
            for role in apis
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for role in ("canary", "broken", "shifted"):
            _wait_for(
                prometheus,
                "namespace_rollouts_pod_template_hash:churn_api_requests:rate5m"
                f'{{rollouts_pod_template_hash="{hashes[role]}"}}',
            )
        _wait_for(
            prometheus,
            "namespace_rollouts_pod_template_hash_le:churn_api_prediction_probability:cdf_rate5m"
            f'{{rollouts_pod_template_hash="{hashes["shifted"]}"}}',
        )
        yield prometheus, hashes


def _run(
    measured: tuple[Prometheus, dict[str, str]], template: str, canary: str
) -> tuple[list[float], str]:
    prometheus, hashes = measured
    (spec, metric), *_ = [
        (t, m) for t, m in analysis_metrics() if t["metadata"]["name"] == template
    ]
    args = {"canary-hash": hashes[canary], "stable-hash": hashes["stable"]}
    declared = {arg["name"]: args[arg["name"]] for arg in spec["spec"]["args"]}
    result = prometheus.query(substitute_args(metric["provider"]["prometheus"]["query"], declared))
    return result, phase(metric["successCondition"], metric["failureCondition"], result)


def test_prometheus_loads_every_rule_group_and_evaluates_it_without_error(
    measured: tuple[Prometheus, dict[str, str]],
) -> None:
    prometheus, _ = measured
    groups = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {group["name"] for group in groups} >= {"churn-api.release", "churn-api.slo"}
    assert [(r["name"], r["lastError"]) for r in rules if r["health"] == "err"] == []


@pytest.mark.parametrize(
    "template", ["churn-api-success-rate", "churn-api-latency-p99", "churn-api-prediction-shift"]
)
def test_each_analysis_query_returns_a_number_and_passes_for_the_healthy_canary(
    measured: tuple[Prometheus, dict[str, str]], template: str
) -> None:
    result, outcome = _run(measured, template, "canary")
    assert len(result) == 1
    assert not math.isnan(result[0])
    assert outcome in HEALTHY_CANARY_VERDICTS[template], result


def test_the_success_rate_fails_a_canary_whose_predictions_answer_5xx(
    measured: tuple[Prometheus, dict[str, str]],
) -> None:
    result, outcome = _run(measured, "churn-api-success-rate", "broken")
    assert result == [0.0]
    assert outcome == "Failed"


def test_the_prediction_shift_fails_a_canary_scoring_a_shifted_population(
    measured: tuple[Prometheus, dict[str, str]],
) -> None:
    result, outcome = _run(measured, "churn-api-prediction-shift", "shifted")
    assert result[0] >= 0.25
    assert outcome == "Failed"


def test_the_shift_of_the_healthy_canary_is_small(
    measured: tuple[Prometheus, dict[str, str]],
) -> None:
    healthy, _ = _run(measured, "churn-api-prediction-shift", "canary")
    shifted, _ = _run(measured, "churn-api-prediction-shift", "shifted")
    assert healthy[0] < shifted[0]
