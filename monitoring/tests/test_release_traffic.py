"""The analysis load drives a release to a verdict with no other client, first release included.

Real churn-api processes on 127.0.0.1, scraped every second by a real Prometheus with the
rules loaded, each with its own pod-template hash:

- ``stable`` and ``canary``: the fixture model; nothing calls them but the smoke load;
- ``bootstrap``: the bootstrap pin of a new environment, refused, so never ready;
- ``quiet``: the fixture model, ready, and never called.

The smoke load (platform/apps/churn-api/base/smoke_load.py, what the AnalysisTemplate
churn-api-smoke-load runs) sends the same records to ``canary`` and ``stable``. Then the
AnalysisTemplate queries run as Argo Rollouts runs them: the canary passes all three against
``stable``; against ``bootstrap`` (the first release) the shift passes instead of waiting for
a comparison that cannot come; against ``quiet`` it stays Inconclusive.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from argo_conditions import phase
from monitoring_sources import HEALTHY_CANARY_VERDICTS, REPO, analysis_metrics, substitute_args
from processes import ChurnApi, Prometheus, pods_by_role

pytestmark = pytest.mark.slow

LOAD_SECONDS = 12.0
SMOKE_LOAD = REPO / "platform" / "apps" / "churn-api" / "base" / "smoke_load.py"


def _smoke_load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("smoke_load", SMOKE_LOAD)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["smoke_load"] = module
    spec.loader.exec_module(module)
    return module


smoke_load = _smoke_load()


def _wait_for(prometheus: Prometheus, expr: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        values = prometheus.query(expr)
        if values and not any(math.isnan(v) for v in values):
            return
        time.sleep(0.5)
    raise AssertionError(f"no value for {expr} after {timeout}s")


@pytest.fixture(scope="module")
def driven(
    prometheus_tools: None,
    rules_file: Path,
    fixture_model: tuple[Path, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Prometheus, dict[str, str], dict[str, ChurnApi], dict[str, Any]]]:
    """Prometheus after the smoke load, the hashes and processes by role, the load's outcome."""
    path, sha256 = fixture_model
    workdir = tmp_path_factory.mktemp("release-traffic")
    bootstrap = hashlib.sha256(b"the bootstrap pin").hexdigest()
    pins = {
        "stable": (sha256, True),
        "canary": (sha256, True),
        "bootstrap": (bootstrap, False),
        "quiet": (sha256, True),
    }
    with pods_by_role(path, pins, rules_file, workdir, "5d8e") as (apis, hashes, prometheus):
        outcome: dict[str, Any] = {}

        def drive() -> None:
            outcome["load"] = smoke_load.run(
                apis["canary"].url, apis["stable"].url, LOAD_SECONDS, 20.0, seed=7
            )

        thread = threading.Thread(target=drive)
        thread.start()
        thread.join()
        for role in ("canary", "stable"):
            _wait_for(
                prometheus,
                "namespace_rollouts_pod_template_hash_le:churn_api_prediction_probability:cdf_rate5m"
                f'{{rollouts_pod_template_hash="{hashes[role]}"}}',
            )
        quiet = hashes["quiet"]
        _wait_for(prometheus, f'churn_api_model_ready{{rollouts_pod_template_hash="{quiet}"}}')
        yield prometheus, hashes, apis, outcome


def _run(prometheus: Prometheus, template: str, args: dict[str, str]) -> tuple[list[float], str]:
    (spec, metric), *_ = [
        (t, m) for t, m in analysis_metrics() if t["metadata"]["name"] == template
    ]
    declared = {arg["name"]: args[arg["name"]] for arg in spec["spec"]["args"]}
    result = prometheus.query(substitute_args(metric["provider"]["prometheus"]["query"], declared))
    return result, phase(metric["successCondition"], metric["failureCondition"], result)


def test_the_smoke_load_sent_the_same_records_to_the_canary_and_the_stable(
    driven: tuple[Prometheus, dict[str, str], dict[str, ChurnApi], dict[str, Any]],
) -> None:
    _, _, apis, outcome = driven
    load = outcome["load"]
    canary, stable = load[apis["canary"].url], load[apis["stable"].url]
    assert canary["2xx"] > 50
    assert canary == stable


@pytest.mark.parametrize(
    "template", ["churn-api-success-rate", "churn-api-latency-p99", "churn-api-prediction-shift"]
)
def test_with_the_smoke_load_alone_every_metric_of_a_good_canary_passes(
    driven: tuple[Prometheus, dict[str, str], dict[str, ChurnApi], dict[str, Any]],
    template: str,
) -> None:
    prometheus, hashes, _, _ = driven
    args = {"canary-hash": hashes["canary"], "stable-hash": hashes["stable"]}
    result, outcome = _run(prometheus, template, args)
    assert outcome in HEALTHY_CANARY_VERDICTS[template], result


def test_the_first_release_against_a_never_ready_bootstrap_stable_does_not_wait_for_a_shift(
    driven: tuple[Prometheus, dict[str, str], dict[str, ChurnApi], dict[str, Any]],
) -> None:
    prometheus, hashes, _, _ = driven
    args = {"canary-hash": hashes["canary"], "stable-hash": hashes["bootstrap"]}
    assert _run(prometheus, "churn-api-prediction-shift", args) == ([0.0], "Successful")


def test_a_ready_stable_without_predictions_leaves_the_shift_inconclusive(
    driven: tuple[Prometheus, dict[str, str], dict[str, ChurnApi], dict[str, Any]],
) -> None:
    prometheus, hashes, _, _ = driven
    args = {"canary-hash": hashes["canary"], "stable-hash": hashes["quiet"]}
    assert _run(prometheus, "churn-api-prediction-shift", args) == ([], "Inconclusive")


def test_the_smoke_load_fails_when_the_new_pods_answer_no_prediction(
    driven: tuple[Prometheus, dict[str, str], dict[str, ChurnApi], dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, apis, _ = driven
    argv = ["--new", apis["bootstrap"].url, "--stable", apis["stable"].url, "--duration", "1"]
    assert smoke_load.main(argv) == 1
    # A refused model has no contract, so the new pods cannot even publish their schema.
    error = capsys.readouterr().err
    assert apis["bootstrap"].url in error
    assert "503" in error


def test_the_smoke_load_passes_when_only_the_stable_is_down(
    driven: tuple[Prometheus, dict[str, str], dict[str, ChurnApi], dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, apis, _ = driven
    argv = ["--new", apis["canary"].url, "--stable", apis["bootstrap"].url, "--duration", "1"]
    assert smoke_load.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any('"5xx"' in line for line in lines), lines


def test_the_smoke_load_names_an_unreachable_new_target() -> None:
    argv = ["--new", "http://127.0.0.1:9", "--duration", "1"]
    assert smoke_load.main(argv) == 1


def test_the_same_seed_draws_the_same_valid_records() -> None:
    schema = {
        "properties": {
            "tenure": {"type": "integer", "minimum": 0, "maximum": 120},
            "plan": {"enum": ["a", "b"]},
            "paperless": {"type": "boolean"},
            "charges": {"type": "number", "minimum": 0.0, "maximum": 1000.0},
        },
        "required": ["tenure", "plan", "paperless", "charges"],
    }
    first = smoke_load.draw_records(schema, 50, seed=3)
    assert first == smoke_load.draw_records(schema, 50, seed=3)
    assert all(0 <= r["tenure"] <= 72 and r["plan"] in {"a", "b"} for r in first)
