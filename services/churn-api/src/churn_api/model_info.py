"""``GET /v1/model``: what serves, where it came from, and the shadow beside it.

The answer names the serving model (``version``, ``sha256``, ``uri``), the
feature ``contract`` it embeds, and its ``lineage``: the record the pipeline
published beside the artifact (``<sha256>.lineage.json``: commit, workflow, run,
data source with its version and digest, gate result, pull request). With a
shadow pinned, ``shadow`` has the same fields plus ``ready`` and ``reason``.

The lineage is read once, in the background after start, and only kept when it
describes this very artifact (its ``artifact.sha256`` is the pin's). A missing
or unreadable record is ``null`` and one log line: it never delays readiness
and never refuses a model, which the sha256 pin alone decides.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import msgspec
from litestar import MediaType, Response, get
from litestar.handlers import HTTPRouteHandler

from churn_api.contract import request_fields
from churn_api.errors import ApiError
from churn_api.logs import log_event
from churn_api.routes import ServiceState
from churn_api.schemas import ErrorDetail
from churn_api.shadow import Shadow
from churn_api.storage import ModelLoadError, fetch

__all__ = ["ModelInfo", "lineage_uri", "read_lineage"]

logger = logging.getLogger("churn_api")
_encoder = msgspec.json.Encoder()


def lineage_uri(model_uri: str) -> str | None:
    """Where the pipeline publishes the lineage of the artifact at ``model_uri``."""
    return (
        model_uri.removesuffix(".onnx") + ".lineage.json" if model_uri.endswith(".onnx") else None
    )


def read_lineage(model_uri: str, sha256: str) -> dict[str, Any] | None:
    """The lineage record beside ``model_uri`` if it describes ``sha256``; else None (logged)."""
    uri = lineage_uri(model_uri)
    if uri is None:
        return None
    try:
        record = json.loads(fetch(uri))
    except ModelLoadError as exc:
        log_event(logger, logging.WARNING, "lineage_unavailable", uri=uri, reason=exc.reason)
        return None
    except ValueError as exc:
        log_event(
            logger, logging.WARNING, "lineage_unavailable", uri=uri, reason=f"not JSON: {exc}"
        )
        return None
    if not isinstance(record, dict):
        log_event(logger, logging.WARNING, "lineage_unavailable", uri=uri, reason="not an object")
        return None
    artifact = record.get("artifact")
    described = artifact.get("sha256") if isinstance(artifact, dict) else None
    if described != sha256:
        log_event(
            logger,
            logging.WARNING,
            "lineage_unavailable",
            uri=uri,
            reason=f"describes sha256 {described}, not the pinned {sha256}",
        )
        return None
    lineage: dict[str, Any] = record
    return lineage


class ModelInfo:
    """The lineage of the primary and the shadow, and the route that answers them."""

    def __init__(self, state: ServiceState, shadow: Shadow | None) -> None:
        self.state = state
        self.shadow = shadow
        self.lineage: dict[str, Any] | None = None
        self.shadow_lineage: dict[str, Any] | None = None
        self.started = False
        self.done = threading.Event()

    def load(self) -> None:
        """Read the lineage records and load the shadow (a background thread at start)."""
        settings = self.state.settings
        self.lineage = read_lineage(settings.model_uri, settings.model_sha256)
        shadow = self.shadow
        if shadow is not None:
            self.shadow_lineage = read_lineage(shadow.uri, shadow.sha256)
            shadow.load()
        self.done.set()

    def describe(self) -> dict[str, Any]:
        """The ``GET /v1/model`` body."""
        settings = self.state.settings
        model = self.state.model
        if model is None:
            raise ApiError(
                503, "not_ready", [ErrorDetail(path="$", reason=self.state.reason or "loading")]
            )
        body: dict[str, Any] = {
            "version": model.version,
            "sha256": model.sha256,
            "uri": settings.model_uri,
            "threshold": model.threshold,
            "contract": request_fields(model.contract),
            "lineage": self.lineage,
            "shadow": None,
        }
        shadow = self.shadow
        if shadow is not None:
            body["shadow"] = {
                "version": shadow.version,
                "sha256": shadow.sha256,
                "uri": shadow.uri,
                "ready": shadow.model is not None,
                "reason": shadow.reason,
                "threshold": shadow.model.threshold if shadow.model else None,
                "contract": request_fields(shadow.model.contract) if shadow.model else None,
                "lineage": self.shadow_lineage,
            }
        return body

    def handlers(self) -> list[HTTPRouteHandler]:
        """The route: ``GET /v1/model``."""

        @get("/v1/model", sync_to_thread=False)
        def model_route() -> Response[bytes]:
            """The serving model, its contract and lineage, and the shadow when one is pinned."""
            return Response(content=_encoder.encode(self.describe()), media_type=MediaType.JSON)

        return [model_route]
