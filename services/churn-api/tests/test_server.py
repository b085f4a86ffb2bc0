"""The real server process: graceful shutdown, JSON logs, metrics, settings errors, no sklearn."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_testing import CHURN_API, VALID_RECORD, Server, start_server, wait_for

README = Path(__file__).parents[1] / "README.md"


def metric_table() -> dict[str, tuple[str, set[str], str]]:
    """The README's metric table: name -> (type, label names, buckets column)."""
    table: dict[str, tuple[str, set[str], str]] = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`churn_api_"):
            # Label names are the backticked words outside parentheses (which hold values).
            labels = set(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", cells[2])))
            table[cells[0].strip("`")] = (cells[1].split()[0], labels, cells[3])
    return table


def test_metrics_are_exactly_the_readme_table(real_server: Server) -> None:
    url = real_server.url
    httpx.post(f"{url}/v1/predict", json=VALID_RECORD).raise_for_status()
    httpx.post(f"{url}/v1/predict/batch", json={"records": [VALID_RECORD] * 3}).raise_for_status()
    httpx.get(f"{url}/nowhere")
    text = httpx.get(f"{url}/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    exposed = {
        (name + "_total" if family.type == "counter" else name): family
        for name, family in families.items()
        if name.startswith("churn_api_")
    }
    table = metric_table()
    assert set(exposed) == set(table)
    for name, (kind, labels, buckets) in table.items():
        family = exposed[name]
        assert family.type == kind, name
        assert family.samples, f"{name} has no series"
        sample_labels = {k for s in family.samples for k in s.labels if k != "le"}
        assert sample_labels == labels, name
        if kind == "histogram":
            bounds = sorted({float(s.labels["le"]) for s in family.samples if "le" in s.labels})
            assert bounds[:-1] == [float(b) for b in buckets.split(",")], name
    statuses = {
        (s.labels["route"], s.labels["status"]) for s in exposed["churn_api_requests_total"].samples
    }
    assert {("/v1/predict", "200"), ("/v1/predict/batch", "200"), ("unmatched", "404")} <= statuses


@pytest.fixture
def fresh_server(model_path: Path, model_sha256: str) -> Iterator[Server]:
    server = start_server(
        {"MODEL_URI": model_path.as_uri(), "MODEL_SHA256": model_sha256, "MODEL_VERSION": "1"}
    )
    yield server
    server.stop()


def test_sigterm_drains_in_flight_requests_and_turns_unready(fresh_server: Server) -> None:
    url = fresh_server.url
    body = json.dumps(VALID_RECORD).encode()
    release = threading.Event()
    result: dict[str, Any] = {}

    def slow_body() -> Iterator[bytes]:
        yield body[:10]
        release.wait(60)  # the request stays in flight until the test lets it finish
        yield body[10:]

    def in_flight() -> None:
        try:
            result["response"] = httpx.post(
                f"{url}/v1/predict",
                content=slow_body(),
                headers={"content-type": "application/json"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            result["error"] = exc

    thread = threading.Thread(target=in_flight)
    thread.start()
    # In flight means a worker accepted the connection, not merely that the kernel queued it.
    wait_for(lambda: fresh_server.accepted_connections() >= 1, "the worker to accept the request")
    fresh_server.terminate()

    # Readiness turns false: the listener closes, so a probe fails (refused) or reads 503.
    deadline = time.monotonic() + 60
    probe: Any = None
    while time.monotonic() < deadline:
        try:
            probe = httpx.get(f"{url}/readyz", timeout=1).status_code
        except httpx.TransportError as exc:
            probe = type(exc).__name__
        if probe != 200:
            break
        time.sleep(0.05)
    assert probe in {503, "ConnectError"}, probe
    assert fresh_server.process.poll() is None  # still draining the in-flight request

    release.set()
    thread.join(30)
    assert "error" not in result, result.get("error")
    assert result["response"].status_code == 200
    assert result["response"].json()["model_version"] == "1"
    output = fresh_server.stop()
    assert fresh_server.process.returncode == 0
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(e["event"] == "shutting_down" for e in events)
    requests = [e for e in events if e["event"] == "request" and e["route"] == "/v1/predict"]
    assert [r["status"] for r in requests] == [200]


def test_every_log_line_is_json(fresh_server: Server) -> None:
    httpx.post(f"{fresh_server.url}/v1/predict", json=VALID_RECORD).raise_for_status()
    output = fresh_server.stop()
    lines = [line for line in output.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # raises on any non-JSON line
    assert {"model_ready", "request", "shutting_down"} <= {e["event"] for e in events}


def test_invalid_settings_exit_with_a_clear_error() -> None:
    env = {**os.environ, "MODEL_URI": "ftp://x", "MODEL_SHA256": "nope", "MODEL_VERSION": "1"}
    run = subprocess.run(
        [CHURN_API, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 2
    error = json.loads(run.stderr.strip().splitlines()[-1])
    assert error["event"] == "invalid_settings"
    assert "MODEL_URI='ftp://x'" in error["detail"]
    assert "MODEL_SHA256='nope'" in error["detail"]


def test_the_serving_path_never_imports_scikit_learn(model_path: Path, model_sha256: str) -> None:
    script = f"""
import os, sys
os.environ.update(MODEL_URI={model_path.as_uri()!r}, MODEL_SHA256={model_sha256!r})
os.environ["MODEL_VERSION"] = "1"
import churn_api.__main__
from churn_api.app import app_from_env
from litestar.testing import TestClient
with TestClient(app=app_from_env()) as client:
    import time
    while client.get("/readyz").json()["reason"] == "loading":
        time.sleep(0.02)
    assert client.get("/readyz").status_code == 200
    assert client.post("/v1/predict", json={VALID_RECORD!r}).status_code == 200
bad = sorted(m for m in sys.modules if m.split(".")[0] in {{"sklearn", "skl2onnx", "joblib"}}
             or m == "churn_api.fixture")
print("IMPORTED", bad)
"""
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert "IMPORTED []" in run.stdout, run.stdout + run.stderr


def test_a_second_server_on_a_taken_port_exits_naming_the_address(
    fresh_server: Server, model_path: Path, model_sha256: str
) -> None:
    port = fresh_server.url.rsplit(":", 1)[1]
    second = subprocess.run(
        [CHURN_API, "serve", "--host", "127.0.0.1", "--port", port],
        env={
            **os.environ,
            "MODEL_URI": model_path.as_uri(),
            "MODEL_SHA256": model_sha256,
            "MODEL_VERSION": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    lines = (second.stdout + second.stderr).strip().splitlines()
    assert lines == [f"churn-api: cannot listen on 127.0.0.1:{port}: Address already in use"]
    # The first server still answers alone.
    assert httpx.get(f"{fresh_server.url}/readyz", timeout=5).status_code == 200
