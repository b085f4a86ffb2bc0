"""The ``churn-api`` command: ``serve-local`` says which model it serves, and serves it."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
from service_testing import CHURN_API, VALID_RECORD, free_port


def serve_local(cwd: Path) -> tuple[str, dict[str, object]]:
    """Run ``churn-api serve-local`` in ``cwd``; return its first line and one prediction."""
    port = free_port()
    process = subprocess.Popen(
        [CHURN_API, "serve-local", "--port", str(port)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        prediction = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json=VALID_RECORD)
        assert prediction.status_code == 200, prediction.text
        return first, prediction.json()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_serve_local_without_a_promoted_model_builds_the_fixture(tmp_path: Path) -> None:
    first, prediction = serve_local(tmp_path)
    assert "serving a fixture model built at .local/churn-api/fixture-model.onnx" in first
    assert "run `make demo`" in first
    assert prediction["model_version"] == "fixture"
    assert (tmp_path / ".local/churn-api/fixture-model.onnx").is_file()


def test_serve_local_serves_the_last_promoted_model(
    tmp_path: Path, model_path: Path, model_sha256: str
) -> None:
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local/last-promoted.json").write_text(
        json.dumps(
            {"MODEL_URI": model_path.as_uri(), "MODEL_SHA256": model_sha256, "MODEL_VERSION": "5"}
        )
    )
    first, prediction = serve_local(tmp_path)
    assert "serving the model `make demo` last promoted: version 5" in first
    assert prediction["model_version"] == "5"
