"""HTTP routes: predict one, predict a batch, health, readiness, metrics, docs.

Bodies are read and decoded here with msgspec's strict decoder (not Litestar's
lenient signature parsing, which would coerce ``"12"`` into ``12``), so the
types in ``schemas.py`` are exactly what is accepted. Every client mistake
becomes an ``ApiError``, answered as JSON by the app's exception handler.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import msgspec
import numpy as np
from litestar import MediaType, Response, asgi, get
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from churn_api.capture import Capture
from churn_api.errors import ApiError, decode_error, validation_error
from churn_api.metrics import Metrics
from churn_api.model import Model
from churn_api.openapi import DOCS_HTML, openapi_document
from churn_api.schemas import (
    BatchResponse,
    ErrorDetail,
    HealthResponse,
    PredictRequest,
    PredictResponse,
    ReadinessResponse,
    batch_request_type,
)
from churn_api.settings import Settings
from churn_api.shadow import Shadow

__all__ = [
    "ROUTES",
    "RawResponse",
    "ServiceState",
    "new_customer_id",
    "new_customer_ids",
    "route_handlers",
]

# The route templates; anything else is counted as "unmatched".
ROUTES: Final = frozenset(
    {
        "/v1/predict",
        "/v1/predict/batch",
        "/v1/feedback",
        "/v1/model",
        "/healthz",
        "/readyz",
        "/metrics",
        "/schema/openapi.json",
        "/docs",
    }
)
_encoder = msgspec.json.Encoder()
_HEX = np.array([list(f"{b:02x}".encode()) for b in range(256)], dtype=np.uint8)


@dataclass
class ServiceState:
    """What the routes share: settings, metrics and the model once it is verified."""

    settings: Settings
    metrics: Metrics
    model: Model | None = None
    capture: Capture | None = None
    # The pinned challenger, scored after each response is sent; None when none is pinned.
    shadow: Shadow | None = None
    # "loading" until the load ends, then None (ready), a refusal reason, or "shutting_down".
    reason: str | None = "loading"

    @property
    def ready(self) -> bool:
        """True only while a verified model serves and the process is not stopping."""
        return self.model is not None and self.reason is None


class RawResponse:
    """A finished response as bytes, sent straight to ASGI.

    Litestar passes a handler's ASGI-callable return value through untouched, which
    skips its response pipeline (header objects, encoders): the hot routes pay only
    for what they need.
    """

    __slots__ = ("body", "headers", "status")

    def __init__(self, body: bytes, status: int = 200, content_type: bytes = b"application/json"):
        self.body = body
        self.status = status
        self.headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the status line, headers and body."""
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": self.status,
            "headers": self.headers,
        }
        await send(start)
        body: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": self.body,
            "more_body": False,
        }
        await send(body)


def _error(status: int, error: str, reason: str) -> ApiError:
    return ApiError(status, error, [ErrorDetail(path="$", reason=reason)])


async def _read_json(scope: Scope, receive: Receive, limit: int) -> bytes:
    # Straight from the ASGI scope and receive channel: Litestar's Request and
    # Headers objects cost more than the whole prediction.
    content_type = b""
    length = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            length = value
    media_type = content_type.partition(b";")[0].strip().lower()
    if media_type != b"application/json":
        got = media_type.decode("latin-1") or "none"
        raise _error(
            415, "unsupported_media_type", f"content type must be application/json, got {got!r}"
        )
    if length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: the client left mid-body
            raise _error(400, "incomplete_body", "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def new_customer_id() -> str:
    """A random (version 4) UUID as text; about 5 times cheaper than ``str(uuid.uuid4())``."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_customer_ids(n: int) -> list[str]:
    """``n`` random UUIDs at once, vectorized: a 10,000-record batch needs them fast."""
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = _HEX[raw].reshape(n, 32)  # two hex digits per byte
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    text = np.hstack(
        [digits[:, :8], dash, digits[:, 8:12], dash, digits[:, 12:16], dash,
         digits[:, 16:20], dash, digits[:, 20:]]
    )  # fmt: skip
    ids: list[str] = text.view("S36").ravel().astype(str).tolist()
    return ids


def _too_large(limit: int) -> ApiError:
    return _error(413, "request_entity_too_large", f"body over {limit} bytes")


def _require_model(state: ServiceState) -> Model:
    model = state.model
    if model is None or state.reason is not None:
        raise ApiError(503, "not_ready", [ErrorDetail(path="$", reason=state.reason or "loading")])
    return model


def route_handlers(state: ServiceState) -> list[BaseRouteHandler]:  # noqa: PLR0915
    """The app's handlers, bound to ``state``."""
    settings = state.settings
    batch_type = batch_request_type(settings.max_batch)
    one_decoder = msgspec.json.Decoder(PredictRequest)
    batch_decoder = msgspec.json.Decoder(batch_type)
    document = _encoder.encode(openapi_document(batch_type, auth=bool(settings.api_keys)))

    limit = settings.max_body_bytes

    def method_and_model(scope: Scope) -> Model:
        if scope["method"] != "POST":  # type: ignore[typeddict-item]
            raise ApiError(
                405,
                "method_not_allowed",
                [ErrorDetail(path="$", reason=f"{scope['method']} is not allowed; use POST")],  # type: ignore[typeddict-item]
            )
        return _require_model(state)

    # Raw ASGI handlers: Litestar routes, authorises (app.py), times and catches
    # errors around them, but builds no Request, runs no signature model and no
    # response pipeline for the two hot routes.
    @asgi("/v1/predict", copy_scope=False)
    async def predict(scope: Scope, receive: Receive, send: Send) -> None:
        """Score one customer."""
        model = method_and_model(scope)
        body = await _read_json(scope, receive, limit)
        try:
            record = one_decoder.decode(body)
        except msgspec.ValidationError as exc:
            raise validation_error(exc) from None
        except msgspec.DecodeError as exc:
            raise decode_error(exc) from None
        probability = model.probability(record)
        churn = probability >= model.threshold
        state.metrics.observe_prediction(model.version, probability, churn)
        response = PredictResponse(
            prediction_id=new_customer_id(),
            customer_id=record.customer_id or new_customer_id(),
            churn=churn,
            probability=probability,
            model_version=model.version,
            timestamp=datetime.now(UTC),
        )
        if state.capture is not None:
            state.capture.predictions(model, [response], [record])
        await RawResponse(_encoder.encode(response))(scope, receive, send)
        if (shadow := state.shadow) is not None:
            shadow.observe_one(record, probability, churn)

    @asgi("/v1/predict/batch", copy_scope=False)
    async def predict_batch(scope: Scope, receive: Receive, send: Send) -> None:
        """Score up to CHURN_API_MAX_BATCH customers, one result per record, in order."""
        model = method_and_model(scope)
        body = await _read_json(scope, receive, limit)
        try:
            batch = batch_decoder.decode(body)
        except msgspec.ValidationError as exc:
            raise validation_error(exc) from None
        except msgspec.DecodeError as exc:
            raise decode_error(exc) from None
        records: list[PredictRequest] = batch.records  # type: ignore[attr-defined]
        probabilities = model.probabilities(records)
        state.metrics.batch_size.observe(len(records))
        state.metrics.observe_predictions(model.version, probabilities, model.threshold)
        now = datetime.now(UTC)
        threshold, version = model.threshold, model.version
        ids = [r.customer_id for r in records]
        missing = ids.count(None)
        if missing:
            fresh = iter(new_customer_ids(missing))
            ids = [i if i is not None else next(fresh) for i in ids]
        prediction_ids = new_customer_ids(len(records))
        predictions = [
            PredictResponse(
                prediction_id=prediction_id,
                customer_id=customer_id,  # type: ignore[arg-type]
                churn=p >= threshold,
                probability=p,
                model_version=version,
                timestamp=now,
            )
            for prediction_id, customer_id, p in zip(
                prediction_ids, ids, probabilities.tolist(), strict=True
            )
        ]
        if state.capture is not None:
            state.capture.predictions(model, predictions, records)
        await RawResponse(_encoder.encode(BatchResponse(predictions=predictions)))(
            scope, receive, send
        )
        if (shadow := state.shadow) is not None:
            shadow.observe(records, probabilities, threshold)

    return [predict, predict_batch, *_probe_handlers(state, document)]


def _probe_handlers(state: ServiceState, document: bytes) -> list[HTTPRouteHandler]:
    settings = state.settings
    healthy = RawResponse(_encoder.encode(HealthResponse(status="ok")))

    @get("/healthz", sync_to_thread=False)
    def healthz() -> RawResponse:
        """Liveness: the process answers. Never touches storage or the model."""
        return healthy

    @get("/readyz", sync_to_thread=False)
    def readyz() -> RawResponse:
        """Readiness: 200 only while a verified, warmed model serves."""
        model = state.model
        body = ReadinessResponse(
            ready=state.ready,
            model_version=model.version if model else settings.model_version,
            reason=state.reason,
        )
        return RawResponse(_encoder.encode(body), 200 if state.ready else 503)

    @get("/metrics", sync_to_thread=False)
    def metrics() -> RawResponse:
        """Prometheus text format."""
        return RawResponse(
            generate_latest(state.metrics.registry), 200, CONTENT_TYPE_LATEST.encode()
        )

    @get("/schema/openapi.json", sync_to_thread=False, include_in_schema=False)
    def openapi() -> RawResponse:
        """The OpenAPI 3.1 document."""
        return RawResponse(document)

    @get("/docs", sync_to_thread=False, include_in_schema=False)
    def docs() -> Response[str]:
        """Swagger UI over the OpenAPI document."""
        return Response(content=DOCS_HTML, media_type=MediaType.HTML)

    return [healthz, readyz, metrics, openapi, docs]
