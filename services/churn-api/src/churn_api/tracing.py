"""OpenTelemetry traces, off unless ``CHURN_API_OTLP_ENDPOINT`` is set.

When set, Litestar's ``OpenTelemetryPlugin`` wraps the app: one server span per
request (probes and metrics excepted), exported in batches over OTLP/HTTP to
``<endpoint>/v1/traces`` by a background thread, with the service name
``churn-api`` and the model version as resource attributes. When unset, no
plugin is installed and nothing OpenTelemetry runs per request.
"""

from __future__ import annotations

from typing import Final

from litestar.plugins import PluginProtocol
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

__all__ = ["SERVICE_NAME", "tracing_plugins"]

SERVICE_NAME: Final = "churn-api"


def tracing_plugins(
    endpoint: str, model_version: str, exempt: frozenset[str]
) -> tuple[list[PluginProtocol], TracerProvider | None]:
    """The plugins that export traces to ``endpoint`` (none when it is empty), and the provider."""
    if not endpoint:
        return [], None
    resource = Resource.create({"service.name": SERVICE_NAME, "service.version": model_version})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces", timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    config = OpenTelemetryConfig(
        tracer_provider=provider,
        exclude=[f"^{path}$" for path in sorted(exempt)],
        exclude_spans=["receive", "send"],  # one span per request, not one per ASGI message
    )
    return [OpenTelemetryPlugin(config)], provider
