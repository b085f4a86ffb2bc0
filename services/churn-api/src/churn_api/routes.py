"""HTTP routes: predict one, predict a batch, health, readiness, metrics, docs.

Plain Litestar handlers. The two predict routes read the body themselves and
decode it with msgspec's strict decoder (not Litestar's lenient signature
parsing, which would coerce ``"12"`` into ``12``) with the request types of
the served model's contract (``contract.request_types``), so they are exactly
what is accepted. Every client mistake becomes an
``ApiError``, answered as JSON by the app's exception handler. Handlers reach
the app's ``ServiceState`` through dependency injection (``service``), the two
predict routes by key (``service_of``). Bodies are encoded with msgspec and
returned as Litestar's own ``ASGIResponse`` (``_json``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
import numpy as np
from litestar import MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.handlers import HTTPRouteHandler
from litestar.params import SkipValidation
from litestar.response.base import ASGIResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from churn_api.capture import Capture
from churn_api.contract import CustomerRecord
from churn_api.errors import ApiError, decode_error, validation_error
from churn_api.explain import explain_prediction, explained
from churn_api.metrics import Metrics
from churn_api.model import Model
from churn_api.openapi import DOCS_HTML, openapi_json
from churn_api.schemas import (
    BatchResponse,
    ErrorDetail,
    HealthResponse,
    PredictResponse,
    ReadinessResponse,
)
from churn_api.settings import Settings
from churn_api.shadow import Shadow

__all__ = [
    "HANDLERS",
    "PREDICT_ROUTES",
    "PROBE_ROUTES",
    "ROUTES",
    "ServiceState",
    "new_customer_ids",
    "new_uuid",
    "service_of",
]

PREDICT_ROUTES: Final = frozenset({"/v1/predict", "/v1/predict/batch"})
# Never authenticated, limited or shed: the kubelet and Prometheus must always get through.
PROBE_ROUTES: Final = frozenset({"/healthz", "/readyz", "/metrics"})
_encoder = msgspec.json.Encoder()
_BOOLEANS: Final = {"true": True, "1": True, "false": False, "0": False}
# The variant digit of a version 4 UUID is 8, 9, a or b: the top two bits of its nibble are 10.
_VARIANT_DIGIT: Final = {f"{n:x}": f"{0x8 | (n & 0x3):x}" for n in range(16)}
_HEX: Final = np.array([list(f"{b:02x}".encode()) for b in range(256)], dtype=np.uint8)


@dataclass
class ServiceState:
    """What the routes share: settings, metrics, decoders and the model once it is verified."""

    settings: Settings
    metrics: Metrics
    model: Model | None = None
    capture: Capture | None = None
    # The pinned challenger (None when none is pinned): capture's flush thread scores it,
    # never a route, so a prediction costs the same with or without one.
    shadow: Shadow | None = None
    # "loading" until the load ends, then None (ready), a refusal reason, or "shutting_down".
    reason: str | None = "loading"

    @property
    def ready(self) -> bool:
        """True only while a verified model serves and the process is not stopping."""
        return self.model is not None and self.reason is None

    def require_model(self) -> Model:
        """The serving model, or 503 naming why there is none."""
        model = self.model
        if model is None or self.reason is not None:
            raise _error(503, "not_ready", self.reason or "loading")
        return model


# The app's one ServiceState, injected as is (its identity matters: no validation, no copy).
Service = NamedDependency[SkipValidation[ServiceState]]


def _error(status: int, error: str, reason: str) -> ApiError:
    return ApiError(status, error, [ErrorDetail(path="$", reason=reason)])


def _json(body: bytes, status: int = 200) -> ASGIResponse:
    """A body already encoded as JSON, sent as it is.

    Litestar turns every ``Response`` into this ``ASGIResponse`` before sending it.
    For bytes that are already JSON that step only costs time: about 4 us a
    request, as much as scoring, ids and encoding together.
    """
    return ASGIResponse(body=body, status_code=status, media_type=MediaType.JSON)


def _plain_json(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the request's content type is exactly ``application/json``."""
    for name, value in headers:
        if name == b"content-type":
            return value == b"application/json"
    return False


async def _decode(request: Request[Any, Any, Any], decoder: msgspec.json.Decoder[Any]) -> Any:
    """The body as ``decoder``'s type: 415, 413, 400 or 422 naming what is wrong."""
    # The header clients send, compared as is in the raw ASGI headers: parsing it (or building
    # Litestar's Headers) costs 1 to 2 us, a third of what a prediction may add to the floor.
    # Anything else (case, parameters) is parsed.
    if _plain_json(request.scope["headers"]):
        media_type = "application/json"
    else:
        media_type, _ = request.content_type
    if media_type != "application/json":
        got = media_type or "none"
        raise _error(
            415, "unsupported_media_type", f"content type must be application/json, got {got!r}"
        )
    try:
        body = await request.body()
    except RequestEntityTooLarge:
        limit = request.route_handler.resolve_request_max_body_size()
        raise _error(413, "request_entity_too_large", f"body over {limit} bytes") from None
    except InternalServerException:  # http.disconnect: the client left mid-body
        raise _error(400, "incomplete_body", "client disconnected") from None
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise decode_error(exc) from None


def new_customer_ids(n: int) -> list[str]:
    """``n`` random (version 4) UUIDs as text, vectorised: 8x cheaper than ``uuid4`` for a batch."""
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


def service_of(request: Request[Any, Any, Any]) -> ServiceState:
    """The app's ``ServiceState``, for the two predict routes.

    They read it from the app's state instead of taking it (and ``explain``) as
    injected parameters: Litestar's parameter resolution costs about 5 us a
    request, a tenth of what the app spends on a prediction. By key, not as an
    attribute: ``State`` serves attributes from ``__getattr__``, which Python
    calls only after a failed look-up has raised an ``AttributeError`` (1 us).
    """
    state: ServiceState = request.app.state["service"]
    return state


def _uuid_text(digits: str) -> str:
    """32 random hex digits as a version 4 UUID: the version and RFC 4122 variant digits set."""
    variant = _VARIANT_DIGIT[digits[16]]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:32]}"


# Random ids made _IDS_PER_DRAW at a time, from one os.urandom call: a call costs about as much
# as formatting an id, and a prediction needs two.
_IDS_PER_DRAW: Final = 128
_ids: list[str] = []
# A forked child must not hand out the ids its parent already holds.
os.register_at_fork(after_in_child=_ids.clear)


def new_uuid() -> str:
    """A random (version 4) UUID as text, about 3 times cheaper than ``str(uuid.uuid4())``."""
    if not _ids:
        digits = os.urandom(16 * _IDS_PER_DRAW).hex()
        _ids.extend(_uuid_text(digits[i : i + 32]) for i in range(0, len(digits), 32))
    return _ids.pop()


def _wants_explanation(request: Request[Any, Any, Any]) -> bool:
    if not request.scope["query_string"]:  # the usual request: no query at all
        return False
    value = request.query_params.get("explain", "false").lower()
    if value not in _BOOLEANS:
        raise ApiError(
            400,
            "bad_query",
            [ErrorDetail(path="explain", reason=f"must be true or false, got {value!r}")],
        )
    return _BOOLEANS[value]


@post("/v1/predict", status_code=200, opt={"scope": "predict"})
async def predict(request: Request[Any, Any, Any]) -> ASGIResponse:
    """Score one customer; with ``?explain=true`` also the features that moved the score."""
    service = service_of(request)
    explain = _wants_explanation(request)
    model = service.require_model()
    # The request types are the served model's: its contract is the API.
    record: CustomerRecord = await _decode(request, model.types.decode_one)
    probability = model.probability(record)
    churn = probability >= model.threshold
    service.metrics.observe_prediction(model.version, probability, churn)
    response = PredictResponse(
        prediction_id=new_uuid(),
        customer_id=record.customer_id or new_uuid(),
        churn=churn,
        probability=probability,
        model_version=model.version,
        timestamp=datetime.now(UTC),
    )
    if service.capture is not None:
        service.capture.predictions(model, [response], [record])
    body = (
        _encoder.encode(explained(response, explain_prediction(model, record)))
        if explain
        else _encoder.encode(response)
    )
    return _json(body)


@post("/v1/predict/batch", status_code=200, opt={"scope": "predict"})
async def predict_batch(request: Request[Any, Any, Any]) -> ASGIResponse:
    """Score up to CHURN_API_MAX_BATCH customers, one result per record, in order."""
    service = service_of(request)
    model = service.require_model()
    batch = await _decode(request, model.types.decode_batch)
    records: list[CustomerRecord] = batch.records
    probabilities = model.probabilities(records)
    service.metrics.batch_size.observe(len(records))
    service.metrics.observe_predictions(model.version, probabilities, model.threshold)
    now = datetime.now(UTC)
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
            churn=p >= model.threshold,
            probability=p,
            model_version=model.version,
            timestamp=now,
        )
        for prediction_id, customer_id, p in zip(
            prediction_ids, ids, probabilities.tolist(), strict=True
        )
    ]
    if service.capture is not None:
        service.capture.predictions(model, predictions, records)
    return _json(_encoder.encode(BatchResponse(predictions=predictions)))


_HEALTHY: Final = _encoder.encode(HealthResponse(status="ok"))


@get("/healthz", sync_to_thread=False)
def healthz() -> ASGIResponse:
    """Liveness: the process answers. Never touches storage or the model."""
    return _json(_HEALTHY)


@get("/readyz", sync_to_thread=False)
def readyz(service: Service) -> ASGIResponse:
    """Readiness: 200 only while a verified, warmed model serves."""
    model = service.model
    body = ReadinessResponse(
        ready=service.ready,
        model_version=model.version if model else service.settings.model_version,
        reason=service.reason,
    )
    return _json(_encoder.encode(body), 200 if service.ready else 503)


@get("/metrics", sync_to_thread=False)
def metrics(service: Service) -> Response[bytes]:
    """Prometheus text format."""
    return Response(
        content=generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


@get("/schema/openapi.json", sync_to_thread=False, include_in_schema=False)
def openapi(service: Service) -> ASGIResponse:
    """The OpenAPI 3.1 document of the served model's contract (503 until one serves)."""
    model = service.require_model()
    return _json(openapi_json(model.types, auth=bool(service.settings.api_keys)))


@get("/docs", sync_to_thread=False, include_in_schema=False)
def docs() -> Response[str]:
    """Swagger UI over the OpenAPI document."""
    return Response(content=DOCS_HTML, media_type=MediaType.HTML)


HANDLERS: Final[tuple[HTTPRouteHandler, ...]] = (
    predict,
    predict_batch,
    healthz,
    readyz,
    metrics,
    openapi,
    docs,
)
# The route templates; anything else is counted as "unmatched".
ROUTES: Final = frozenset(
    {*(path for handler in HANDLERS for path in handler.paths), "/v1/feedback", "/v1/model"}
)
