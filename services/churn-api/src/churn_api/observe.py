"""The outermost layer of every HTTP request: request id, overload guard, timing, count, log.

It wraps the Litestar app's ASGI handler (the same place Litestar's own
OpenTelemetry plugin wraps), not a middleware: Litestar answers 404s and 405s
before any middleware runs, and those must carry a request id and be counted too.

Per request:

1. take the caller's ``X-Request-ID`` when it is a sane token, else make one;
   the response echoes it and the log line carries it;
2. when more than ``max_in_flight`` requests are being served, answer 503 with
   ``Retry-After`` at once (probes and metrics excepted): shedding early keeps
   latency bounded for the requests already admitted;
3. time the request, count it by route template, method and status, and write
   one JSON log line.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Final

from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

from churn_api.errors import error_body
from churn_api.logs import log_event
from churn_api.routes import PROBE_ROUTES, ROUTES, ServiceState
from churn_api.schemas import ErrorDetail

__all__ = ["REQUEST_ID_HEADER", "SHED_RETRY_AFTER_SECONDS", "observed"]

REQUEST_ID_HEADER: Final = "x-request-id"
SHED_RETRY_AFTER_SECONDS: Final = 1
_REQUEST_ID: Final = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_OVERLOADED: Final = error_body(
    503, "overloaded", [ErrorDetail(path="$", reason="too many requests in flight; retry later")]
)
logger = logging.getLogger("churn_api")


def _request_id(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _REQUEST_ID.fullmatch(value):
            return value
    return os.urandom(16).hex().encode()


async def _shed(send: Send, request_id: bytes) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", b"application/json"),
            (b"retry-after", b"%d" % SHED_RETRY_AFTER_SECONDS),
            (b"x-request-id", request_id),
        ],
    }
    await send(start)
    body: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": _OVERLOADED,
        "more_body": False,
    }
    await send(body)


def observed(app: ASGIApp, state: ServiceState) -> ASGIApp:
    """``app`` with request ids, the overload guard, timing, counting and one log line each."""
    metrics = state.metrics
    max_in_flight = state.settings.max_in_flight
    in_flight = 0

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal in_flight
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        route = path if path in ROUTES else "unmatched"
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        guarded = route not in PROBE_ROUTES
        try:
            if guarded and max_in_flight and in_flight >= max_in_flight:
                metrics.shed.inc()
                await _shed(send_observed, request_id)
                return
            in_flight += guarded
            try:
                await app(scope, receive, send_observed)
            finally:
                in_flight -= guarded
        finally:
            elapsed = time.perf_counter() - started
            metrics.observe_request(route, method, status, elapsed)
            model = state.model
            log_event(
                logger,
                logging.INFO,
                "request",
                route=route,
                method=method,
                status=status,
                latency_ms=round(elapsed * 1000, 3),
                model_version=model.version if model else None,
                request_id=request_id.decode(),
            )

    return handle
