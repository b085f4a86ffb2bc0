"""Ground truth: ``POST /v1/feedback`` joins churn outcomes to captured predictions.

A record names a ``prediction_id`` (from a prediction's answer) or a
``customer_id`` (meaning that customer's latest captured prediction made at or
before ``observed_at``). The body is decoded as strictly as ``/v1/predict``'s:
a malformed record makes the whole request a 422 naming its path, and nothing
is stored. A valid body is answered 202 with one result per record, in order:

- ``recorded``: the outcome is stored;
- ``duplicate``: the same outcome was already stored (the request is idempotent);
- ``conflict``: a different outcome was already stored; the first one stands;
- ``unknown_prediction``: no captured prediction matches (not sampled, not yet
  written, past retention, or never made).

The record type and its checks (``churn_store.outcomes``) are shared with the
bulk loader of the workflows (``churn_workflows.steps.outcomes``); this module
answers a record they refuse with a 422.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import msgspec
from churn_store.outcomes import (
    OutcomeError,
    OutcomeRecord,
    hashed_outcome,
    outcome_from_record,
)
from churn_store.prediction_store import FeedbackStatus, PredictionStore, StoreError, open_store
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler

from churn_api.errors import ApiError, decode_error, validation_error
from churn_api.schemas import ErrorDetail

__all__ = [
    "FeedbackRequest",
    "FeedbackResponse",
    "FeedbackResult",
    "feedback_handlers",
]

MAX_RECORDS: Final = 10_000
_REASONS: Final[dict[FeedbackStatus, str]] = {
    "recorded": "stored",
    "duplicate": "the same outcome was already stored",
    "conflict": "a different outcome was already stored for this prediction; the first stands",
    "unknown_prediction": "no captured prediction matches: not sampled, not written yet, "
    "past retention, or never made",
}
_encoder = msgspec.json.Encoder()


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """No unknown fields, no coercion (the decoder is strict), immutable."""


class FeedbackRequest(_Strict, frozen=True):
    """``{"records": [...]}``: 1 to 10,000 outcomes."""

    records: Annotated[list[OutcomeRecord], msgspec.Meta(min_length=1, max_length=MAX_RECORDS)]


class FeedbackResult(_Strict, frozen=True):
    """What became of one record."""

    status: str
    prediction_id: str | None
    reason: str


class FeedbackResponse(_Strict, frozen=True):
    """One result per record, in order, and the count of each status."""

    results: list[FeedbackResult]
    counts: dict[str, int]


def results_of(
    statuses: list[tuple[FeedbackStatus, str | None]],
) -> FeedbackResponse:
    """The response body for the store's answers."""
    results = [FeedbackResult(status=s, prediction_id=p, reason=_REASONS[s]) for s, p in statuses]
    counts: dict[str, int] = dict.fromkeys(_REASONS, 0)
    for s, _ in statuses:
        counts[s] += 1
    return FeedbackResponse(results=results, counts=counts)


def feedback_handlers(
    store_url: str | None, customer_id_key: bytes | None
) -> tuple[list[HTTPRouteHandler], Callable[[], Awaitable[None]]]:
    """``POST /v1/feedback`` over the store at ``store_url`` (None: answered 503).

    Also returns the shutdown hook that closes the store the route opened on first use.
    """
    decoder = msgspec.json.Decoder(FeedbackRequest)
    opened: list[PredictionStore] = []
    lock = asyncio.Lock()

    async def store() -> PredictionStore:
        if store_url is None:
            raise _unavailable("CHURN_CAPTURE_URL is not set: no prediction store")
        async with lock:
            if not opened:
                candidate = open_store(store_url)
                await asyncio.to_thread(candidate.migrate)
                opened.append(candidate)
        return opened[0]

    @post("/v1/feedback", status_code=202, include_in_schema=False, opt={"scope": "feedback"})
    async def feedback(request: Request[Any, Any, Any]) -> Response[bytes]:
        """Record ground-truth outcomes; 202 with one result per record."""
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            reason = f"content type must be application/json, got {media_type or 'none'!r}"
            raise ApiError(415, "unsupported_media_type", [ErrorDetail(path="$", reason=reason)])
        try:
            body = decoder.decode(await request.body())
        except msgspec.ValidationError as exc:
            raise validation_error(exc) from None
        except msgspec.DecodeError as exc:
            raise decode_error(exc) from None
        now = datetime.now(UTC)
        try:
            outcomes = [
                outcome_from_record(r, f"$.records[{i}]", now) for i, r in enumerate(body.records)
            ]
        except OutcomeError as exc:
            detail = ErrorDetail(path=exc.path, reason=exc.reason)
            raise ApiError(422, "validation_error", [detail]) from None
        if customer_id_key is not None:
            outcomes = [hashed_outcome(o, customer_id_key) for o in outcomes]
        try:
            target = await store()
            statuses = await asyncio.to_thread(target.record_outcomes, outcomes, "api")
        except StoreError as exc:
            raise _unavailable(str(exc)) from None
        return Response(
            content=_encoder.encode(results_of(statuses)),
            status_code=202,
            media_type="application/json",
        )

    async def close() -> None:
        while opened:
            await asyncio.to_thread(opened.pop().close)

    return [feedback], close


def _unavailable(reason: str) -> ApiError:
    # The store's URL is already redacted by StoreError; strip any stray query secrets.
    reason = re.sub(r"password=\S+", "password=***", reason)
    return ApiError(503, "store_unavailable", [ErrorDetail(path="$", reason=reason)])
