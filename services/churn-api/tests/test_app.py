"""The app at start: load, verify, warm, then ready; or refuse, log once, count, never ready."""

from __future__ import annotations

import gc
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import onnx
import pytest
from churn_api.app import create_app
from churn_api.logs import JsonFormatter
from churn_api.model import Model
from litestar.testing import TestClient
from service_testing import VALID_RECORD, free_port, make_settings, wait_loaded


def refusal_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        getattr(r, "fields", {})
        for r in caplog.records
        if r.name == "churn_api" and r.getMessage() == "model_refused"
    ]


def start_and_wait(settings: Any) -> tuple[Any, Any, str]:
    with TestClient(app=create_app(settings)) as client:
        readiness = wait_loaded(client)
        predict = client.post("/v1/predict", json=VALID_RECORD)
        metrics = client.get("/metrics").text
    return readiness, predict, metrics


def test_the_pinned_model_is_loaded_at_start(model_path: Path, model_sha256: str) -> None:
    readiness, predict, metrics = start_and_wait(make_settings(model_path, model_sha256))
    assert readiness.status_code == 200
    assert predict.status_code == 200
    assert "churn_api_model_ready 1.0" in metrics
    assert f'churn_api_model_info{{model_version="1",sha256="{model_sha256}"}} 1.0' in metrics


def test_the_heap_is_frozen_before_the_loaded_model_serves(
    model_path: Path, model_sha256: str
) -> None:
    gc.unfreeze()  # whatever an earlier test froze goes back to the collector
    with TestClient(app=create_app(make_settings(model_path, model_sha256))) as client:
        assert wait_loaded(client).status_code == 200
        # Frozen objects are out of every collection: a full one no longer walks the app.
        assert gc.get_freeze_count() > 0


def refusal_cases(model_path: Path, model_sha256: str, tmp_path: Path) -> dict[str, Any]:
    not_onnx = tmp_path / "not-onnx.onnx"
    not_onnx.write_bytes(b"garbage")
    return {
        "not_found": make_settings(tmp_path / "absent.onnx", model_sha256),
        "unreadable": make_settings(tmp_path, model_sha256),
        "digest_mismatch": make_settings(model_path, "f" * 64),
        "invalid_model": make_settings(not_onnx, hashlib.sha256(b"garbage").hexdigest()),
    }


@pytest.mark.parametrize("reason", ["not_found", "unreadable", "digest_mismatch", "invalid_model"])
def test_a_refused_model_never_turns_ready(
    reason: str,
    model_path: Path,
    model_sha256: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = refusal_cases(model_path, model_sha256, tmp_path)[reason]
    with caplog.at_level(logging.INFO, logger="churn_api"):
        readiness, predict, metrics = start_and_wait(settings)
    assert readiness.status_code == 503
    assert readiness.json() == {"ready": False, "model_version": "1", "reason": reason}
    assert predict.status_code == 503
    assert f'churn_api_model_load_failures_total{{reason="{reason}"}} 1.0' in metrics
    assert "churn_api_model_ready 0.0" in metrics
    (line,) = refusal_records(caplog)
    assert line["reason"] == reason
    assert line["model_uri"] == settings.model_uri
    assert line["detail"]


def test_a_contract_mismatch_never_turns_ready(
    model_bytes: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proto = onnx.load_from_string(model_bytes)
    for prop in proto.metadata_props:
        if prop.key == "churn.feature_contract":
            prop.value = json.dumps({"tenure": {"type": "int", "min": 0, "max": 12}})
    data = proto.SerializeToString()
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    with caplog.at_level(logging.INFO, logger="churn_api"):
        readiness, _, metrics = start_and_wait(
            make_settings(path, hashlib.sha256(data).hexdigest())
        )
    assert readiness.json()["reason"] == "contract_mismatch"
    assert 'churn_api_model_load_failures_total{reason="contract_mismatch"} 1.0' in metrics
    assert [line["reason"] for line in refusal_records(caplog)] == ["contract_mismatch"]


def test_unreachable_storage_never_turns_ready(
    model_sha256: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    settings = make_settings(Path("/unused"), model_sha256).__replace__(
        model_uri=f"s3://churn-dev-models/churn-model/sha256/{model_sha256}.onnx"
    )
    with caplog.at_level(logging.INFO, logger="churn_api"):
        readiness, _, metrics = start_and_wait(settings)
    assert readiness.json()["reason"] == "storage_unreachable"
    assert 'churn_api_model_load_failures_total{reason="storage_unreachable"} 1.0' in metrics
    assert [line["reason"] for line in refusal_records(caplog)] == ["storage_unreachable"]


def test_the_bootstrap_pin_is_refused(tmp_path: Path) -> None:
    # Before the first promotion a pin holds 64 zeros: nothing can match, nothing serves.
    settings = make_settings(tmp_path / "absent.onnx", "0" * 64).__replace__(model_version="0")
    readiness, predict, _ = start_and_wait(settings)
    assert readiness.json() == {"ready": False, "model_version": "0", "reason": "not_found"}
    assert predict.status_code == 503


def test_one_log_line_per_request_without_feature_values(
    client: TestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    record = {**VALID_RECORD, "customer_id": "secret-customer", "monthly_charges": 123.25}
    with caplog.at_level(logging.INFO, logger="churn_api"):
        client.post("/v1/predict", json=record)
        client.post("/v1/predict", json={**record, "tenure": -5})
        client.get("/nowhere")
    lines = [r for r in caplog.records if r.getMessage() == "request"]
    assert [getattr(r, "fields", {})["status"] for r in lines] == [200, 422, 404]
    first = lines[0].fields  # type: ignore[attr-defined]
    assert first["route"] == "/v1/predict"
    assert first["method"] == "POST"
    assert first["model_version"] == "1"
    assert first["latency_ms"] > 0
    assert lines[2].fields["route"] == "unmatched"  # type: ignore[attr-defined]
    rendered = "\n".join(JsonFormatter().format(r) for r in lines)
    for value in ("secret-customer", "123.25", "fiber-optic", "electronic-check", "-5"):
        assert value not in rendered
    for line in rendered.splitlines():
        json.loads(line)


def test_readiness_turns_false_at_shutdown(settings: Any, model: Model) -> None:
    app = create_app(settings, model=model)
    with TestClient(app=app) as client:
        assert client.get("/readyz").status_code == 200
    assert app.state.service.ready is False
    assert app.state.service.reason == "shutting_down"
