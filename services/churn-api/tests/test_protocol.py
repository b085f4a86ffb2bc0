"""HTTP details: request ids, the overload guard, and reasons with a score (explain=true)."""

from __future__ import annotations

import hashlib
import logging
import math
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from churn_api.app import create_app
from churn_api.contract import CustomerFeatures
from churn_api.explain import TOP
from churn_api.fixture import fixture_onnx_bytes
from churn_api.model import Model, model_from_bytes
from litestar.testing import TestClient
from service_testing import VALID_RECORD, start_server


class TestRequestId:
    def test_a_request_id_is_made_when_absent(self, client: TestClient[Any]) -> None:
        first = client.post("/v1/predict", json=VALID_RECORD).headers["x-request-id"]
        second = client.get("/healthz").headers["x-request-id"]
        assert len(first) == 32
        assert first != second

    @pytest.mark.parametrize("path", ["/v1/predict", "/healthz", "/nowhere"])
    def test_the_callers_request_id_is_echoed(self, client: TestClient[Any], path: str) -> None:
        response = client.post(path, json=VALID_RECORD, headers={"X-Request-ID": "abc-123.x:y"})
        assert response.headers["x-request-id"] == "abc-123.x:y"

    @pytest.mark.parametrize("offered", ["", "a b", "x" * 129, "line\tbreak"])
    def test_an_unusable_request_id_is_replaced(
        self, client: TestClient[Any], offered: str
    ) -> None:
        response = client.get("/healthz", headers={"X-Request-ID": offered})
        assert response.headers["x-request-id"] != offered
        assert len(response.headers["x-request-id"]) == 32

    def test_the_log_line_carries_the_request_id(
        self, client: TestClient[Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO, logger="churn_api"):
            client.post("/v1/predict", json=VALID_RECORD, headers={"X-Request-ID": "trace-7"})
            client.get("/v1/predict", headers={"X-Request-ID": "trace-8"})
        lines = [r.fields for r in caplog.records if r.getMessage() == "request"]  # type: ignore[attr-defined]
        assert [(line["request_id"], line["status"]) for line in lines] == [
            ("trace-7", 200),
            ("trace-8", 405),
        ]


def test_overload_sheds_with_503_and_retry_after(model_path: Path, model_sha256: str) -> None:
    server = start_server(
        {
            "MODEL_URI": model_path.as_uri(),
            "MODEL_SHA256": model_sha256,
            "MODEL_VERSION": "1",
            "CHURN_API_MAX_IN_FLIGHT": "1",
        }
    )
    try:
        port = int(server.url.rsplit(":", 1)[1])
        # One request whose body never finishes arriving: it stays in flight.
        held = socket.create_connection(("127.0.0.1", port))
        held.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 500\r\n\r\n{"
        )
        deadline = time.monotonic() + 120
        while True:
            response = httpx.post(f"{server.url}/v1/predict", json=VALID_RECORD, timeout=5)
            if response.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"] == "overloaded"
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200  # probes pass
        metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
        assert "churn_api_shed_requests_total" in metrics
        held.close()  # the held request ends: new ones are admitted again
        deadline = time.monotonic() + 120
        while True:
            response = httpx.post(f"{server.url}/v1/predict", json=VALID_RECORD, timeout=5)
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert response.status_code == 200
    finally:
        server.stop()


class TestExplain:
    def test_no_explanation_unless_asked(self, client: TestClient[Any]) -> None:
        assert "explanation" not in client.post("/v1/predict", json=VALID_RECORD).json()
        body = client.post("/v1/predict?explain=false", json=VALID_RECORD).json()
        assert "explanation" not in body

    def test_a_linear_model_explains_exactly(self, client: TestClient[Any], model: Model) -> None:
        body = client.post("/v1/predict?explain=true", json=VALID_RECORD).json()
        explanation = body["explanation"]
        assert explanation["method"] == "linear-exact"
        up, down = explanation["up"], explanation["down"]
        assert 0 < len(up) <= TOP
        assert len(down) <= TOP
        assert all(c["log_odds"] > 0 for c in up)
        assert all(c["log_odds"] < 0 for c in down)
        assert [abs(c["log_odds"]) for c in up] == sorted(
            (abs(c["log_odds"]) for c in up), reverse=True
        )
        assert model.linear is not None
        shares = model.linear.contributions(CustomerFeatures(**VALID_RECORD))
        for c in up + down:
            assert c["log_odds"] == pytest.approx(shares[c["feature"]], abs=1e-12)
        listed = {c["feature"] for c in up + down}
        # Nothing left out pushes harder than the weakest listed in its direction.
        for name, value in shares.items():
            if name not in listed and value > 0 and len(up) == TOP:
                assert value <= up[-1]["log_odds"]
        logit = explanation["intercept"] + sum(shares.values())
        assert 1 / (1 + math.exp(-logit)) == pytest.approx(body["probability"], abs=1e-12)

    def test_a_tree_model_says_not_available(self, settings: Any) -> None:
        data = fixture_onnx_bytes(kind="tree")
        tree = model_from_bytes(data, hashlib.sha256(data).hexdigest(), "2")
        with TestClient(app=create_app(settings, model=tree)) as client:
            response = client.post("/v1/predict?explain=true", json=VALID_RECORD)
        assert response.status_code == 200
        explanation = response.json()["explanation"]
        assert explanation["method"] == "not_available"
        assert explanation["up"] == explanation["down"] == []
        assert "not linear" in explanation["detail"]

    def test_a_bad_explain_value_is_400(self, client: TestClient[Any]) -> None:
        response = client.post("/v1/predict?explain=maybe", json=VALID_RECORD)
        assert response.status_code == 400
        assert response.json()["detail"] == [
            {"path": "explain", "reason": "must be true or false, got 'maybe'"}
        ]
        assert client.post("/v1/predict?explain=1", json=VALID_RECORD).json()["explanation"]
