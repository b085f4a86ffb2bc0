"""Fixtures of the monitoring tests, and the per-alert summary printed at the end.

- ``prometheus_tools``: promtool and prometheus on PATH (`make tools` installs them).
- ``rules_file``: the PrometheusRule's groups as a plain rule file in build/monitoring/.
- ``fixture_model``: a real ONNX model built by the service's own fixture code.
- ``live_metrics``: the ``/metrics`` text of a real churn-api serving that model.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The tests import their helpers by name (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from monitoring_sources import ALERT_TESTS, BUILD, MONITORING, REPO, rule_groups, write_rules
from processes import records, start_churn_api


@pytest.fixture(scope="session")
def prometheus_tools() -> None:
    """promtool and prometheus on PATH: `make tools` installs the pinned ones before pytest."""
    missing = [tool for tool in ("promtool", "prometheus") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not on PATH: run `make tools` (or `make test-rules`)")


@pytest.fixture(scope="session")
def rules_file() -> Path:
    return write_rules(rule_groups(), BUILD / "churn-api.rules.yaml")


@pytest.fixture(scope="session")
def fixture_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(path, sha256) of the service's fixture model, version "1"."""
    # Imported here: scikit-learn takes seconds to import.
    from churn_api.fixture import fixture_onnx_bytes  # noqa: PLC0415

    data = fixture_onnx_bytes(version="1")
    path = tmp_path_factory.mktemp("models") / "model.onnx"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session")
def live_metrics(
    fixture_model: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``/metrics`` of two real churn-api processes: one serving, one refusing its model.

    The serving one has answered predictions, a bad request and a batch; the refusing one
    (a pin whose digest does not match) has counted its load failure with a reason.
    """
    path, sha256 = fixture_model
    logs = tmp_path_factory.mktemp("logs")
    serving = start_churn_api(path, sha256, "1", logs)
    refusing = start_churn_api(path, hashlib.sha256(b"another").hexdigest(), "2", logs, ready=False)
    try:
        for record in records(5, seed=1):
            assert serving.predict(record) == 200
        assert serving.predict({"tenure": -1}) == 422
        serving.client.post(f"{serving.url}/v1/predict/batch", json={"records": records(3, seed=2)})
        serving.client.get(f"{serving.url}/no-such-route")
        assert refusing.predict(records(1, seed=3)[0]) == 503
        yield serving.metrics() + refusing.metrics()
    finally:
        serving.stop()
        refusing.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Per alert, the promtool test groups that exercise it and how they ended."""
    if not ALERT_TESTS:
        return
    terminalreporter.section("promtool unit tests per alert")
    for alert in sorted(ALERT_TESTS):
        terminalreporter.write_line(alert)
        for sentence, outcome in ALERT_TESTS[alert]:
            terminalreporter.write_line(f"  {outcome:<6} {sentence}")
    terminalreporter.write_line(f"(from {MONITORING.relative_to(REPO)}/tests/*-test.yaml)")
