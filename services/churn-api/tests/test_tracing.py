"""Traces: exported over OTLP/HTTP to a real collector endpoint on loopback, or not at all."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from churn_api.app import create_app
from churn_api.model import Model
from litestar.plugins.opentelemetry import OpenTelemetryPlugin
from litestar.testing import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from service_testing import VALID_RECORD, make_settings


class Collector:
    """Accepts OTLP/HTTP trace exports on 127.0.0.1 and keeps what it received."""

    def __init__(self) -> None:
        self.exports: list[ExportTraceServiceRequest] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.path == "/v1/traces":
                    owner.exports.append(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for export in self.exports:
            for resource_spans in export.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    out.extend((span.name, resource) for span in scope_spans.spans)
        return out


@pytest.fixture
def collector() -> Iterator[Collector]:
    served = Collector()
    yield served
    served.server.shutdown()
    served.server.server_close()


def test_requests_are_traced_to_the_otlp_endpoint(
    model_path: Path, model_sha256: str, model: Model, collector: Collector
) -> None:
    settings = make_settings(model_path, model_sha256, otlp_endpoint=collector.url)
    with TestClient(app=create_app(settings, model=model)) as client:
        assert client.post("/v1/predict", json=VALID_RECORD).status_code == 200
        assert client.get("/healthz").status_code == 200
    # Leaving the client shuts the app down, which flushes the batch of spans.
    spans = collector.spans()
    names = [name for name, _ in spans]
    assert any("/v1/predict" in name for name in names), names
    assert not any("/healthz" in name for name in names), names
    resource = spans[0][1]
    assert resource["service.name"] == "churn-api"
    assert resource["service.version"] == "1"


def test_no_tracing_unless_an_endpoint_is_set(client: TestClient[Any]) -> None:
    with pytest.raises(KeyError):
        client.app.plugins.get(OpenTelemetryPlugin)
