"""The Litestar application: routes, model loading at start, metrics, logs, auth.

``create_app(settings)`` returns an app that starts unready, loads and verifies
the pinned model in a background thread (so ``/healthz`` answers at once), and
turns ready only when the model is verified and warmed (and the heap frozen:
``_freeze_heap``). A refused model leaves
the process running and unready for good, with the reason in ``/readyz``, in one
log line and in ``churn_api_model_load_failures_total``. On shutdown readiness
turns false before the server drains its in-flight requests.

Every request, including unmatched paths, passes ``observe.observed`` (request
id, overload guard, timing, counting, one JSON log line); the handlers are in
``routes.py`` and reach the shared ``ServiceState`` through dependency injection.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from dataclasses import replace
from http import HTTPStatus
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.di import Provide
from litestar.exceptions import HTTPException, TooManyRequestsException
from litestar.middleware.base import DefineMiddleware
from litestar.stores.base import Store
from litestar.types import Guard

from churn_api.auth import Authenticator, AuthMiddleware, env_credentials, require_scope
from churn_api.capture import Capture, CaptureMetrics, CaptureSettings, load_capture_settings
from churn_api.contract import request_types
from churn_api.errors import ApiError, error_body
from churn_api.feedback import feedback_handlers
from churn_api.logs import configure_logging, log_event
from churn_api.metrics import Metrics
from churn_api.model import Model, load_model
from churn_api.model_info import ModelInfo
from churn_api.observe import observed
from churn_api.quotas import client_of, quota_middleware, quota_store
from churn_api.routes import HANDLERS, PROBE_ROUTES, ServiceState
from churn_api.schemas import ErrorDetail
from churn_api.settings import Settings, load_settings
from churn_api.shadow import Shadow, ShadowMetrics
from churn_api.storage import ModelLoadError
from churn_api.tracing import tracing_plugins

__all__ = ["app_from_env", "create_app"]

logger = logging.getLogger("churn_api")


def _warmed(state: ServiceState, model: Model) -> Model:
    if model.types.max_batch != state.settings.max_batch:  # a model loaded elsewhere (tests)
        model = replace(model, types=request_types(model.contract, state.settings.max_batch))
    warm_up = model.types.warm_up  # a valid record of the model's own contract
    model.probability(warm_up)
    model.probabilities([warm_up, warm_up])
    return model


def _mark_ready(state: ServiceState, model: Model, seconds: float) -> None:
    state.model = model
    state.reason = None
    metrics = state.metrics
    metrics.model_info.labels(model.version, model.sha256).set(1)
    metrics.model_load_duration.set(seconds)
    metrics.model_ready.set(1)


def _freeze_heap() -> None:
    """Take every object alive now out of the garbage collector's full collections.

    A full (generation 2) collection walks every container object in the
    process: with Litestar, numpy and ONNX Runtime loaded, about 100,000 of them,
    50 to 150 ms on one core. Under load the server runs one every few seconds
    (each younger collection promotes the objects of the requests in flight), and
    it stalls every request in flight: the p99 stalls. What is alive once the
    model is loaded and warmed lives as long as the process; frozen, it is never
    walked again, and a full collection only walks what came later (0.1 ms).
    Only the server's load does this (an app given a model, as in tests, does
    not): the collection before it costs as much as the ones it saves.
    """
    gc.collect()  # the loading's garbage is freed first, not kept forever
    gc.freeze()


def _load(state: ServiceState, started: float) -> None:
    settings = state.settings
    pin = {
        "model_uri": settings.model_uri,
        "model_sha256": settings.model_sha256,
        "model_version": settings.model_version,
    }
    try:
        model, _ = load_model(
            settings.model_uri,
            settings.model_sha256,
            settings.model_version,
            max_batch=settings.max_batch,
        )
    except ModelLoadError as exc:
        failure = exc
    except Exception as exc:  # a bug or an unforeseen artifact: refuse it all the same
        failure = ModelLoadError("invalid_model", f"{type(exc).__name__}: {exc}")
    else:
        model = _warmed(state, model)
        _freeze_heap()  # before ready: no request waits for the collection it starts with
        _mark_ready(state, model, time.perf_counter() - started)
        log_event(
            logger,
            logging.INFO,
            "model_ready",
            **pin,
            scorer=model.scorer,
            threshold=model.threshold,
            artifact_model_version=model.metadata.get("churn.model_version"),
            mlflow_run_id=model.metadata.get("churn.mlflow_run_id"),
            git_commit=model.metadata.get("churn.git_commit"),
            load_seconds=round(time.perf_counter() - started, 4),
        )
        return
    state.reason = failure.reason
    state.metrics.model_load_failures.labels(failure.reason).inc()
    log_event(
        logger, logging.ERROR, "model_refused", reason=failure.reason, detail=failure.detail, **pin
    )


def _api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    return Response(
        content=error_body(exc.status, exc.error, exc.details),
        status_code=exc.status,
        media_type=MediaType.JSON,
    )


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    try:
        name = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    except ValueError:
        name = "error"
    detail = [ErrorDetail(path="$", reason=str(exc.detail))]
    return Response(
        content=error_body(exc.status_code, name, detail),
        status_code=exc.status_code,
        media_type=MediaType.JSON,
        headers=exc.headers,
    )


def _throttled(request: Request[Any, Any, Any], exc: TooManyRequestsException) -> Response[bytes]:
    # Litestar's limiter sends RateLimit-Reset (seconds to the window's end); RFC 9110 clients
    # read Retry-After.
    headers = dict(exc.headers or {})
    headers["Retry-After"] = str(max(1, int(headers.get("RateLimit-Reset", "1"))))
    client = client_of(request)
    request.app.state.service.metrics.throttled.inc()
    log_event(logger, logging.WARNING, "throttled", client=client, route=request.url.path)
    detail = [ErrorDetail(path="$", reason=f"{client} is over its quota; retry later")]
    return Response(
        content=error_body(429, "too_many_requests", detail),
        status_code=429,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    logger.exception("unhandled_error", extra={"fields": {"route": request.url.path}})
    detail = [ErrorDetail(path="$", reason="internal error")]
    return Response(
        content=error_body(500, "internal_error", detail),
        status_code=500,
        media_type=MediaType.JSON,
    )


def _authenticator(settings: Settings) -> Authenticator | None:
    """The authenticator for ``settings``; None when no credential is configured."""
    jwt_values = None
    if settings.jwks_url:
        jwt_values = {
            "jwks_url": settings.jwks_url,
            "issuer": settings.jwt_issuer,
            "audience": settings.jwt_audience,
            "algorithms": sorted(settings.jwt_algorithms),
            "leeway_seconds": settings.jwt_leeway_seconds,
        }
    base = env_credentials(settings.api_keys, jwt_values)
    if not base.enabled and not settings.auth_file:
        return None
    return Authenticator(base, Path(settings.auth_file) if settings.auth_file else None)


def _access_control(
    settings: Settings, metrics: Metrics
) -> tuple[list[DefineMiddleware], list[Guard], dict[str, Store]]:
    """Authentication then quotas (in that order: a quota counts per principal), and its guard."""
    middleware: list[DefineMiddleware] = []
    guards: list[Guard] = []
    stores: dict[str, Store] = {}
    authenticator = _authenticator(settings)
    if authenticator is not None:
        middleware.append(AuthMiddleware.define(authenticator, PROBE_ROUTES))
        guards.append(require_scope)
    if settings.quota:
        quota, store_name = quota_middleware(settings.quota, metrics, PROBE_ROUTES)
        middleware.append(quota)
        stores[store_name] = quota_store(settings.redis_url, settings.quota_namespace)
    return middleware, guards, stores


def _say_if_shadow_idle(shadow: Shadow, capture: CaptureSettings | None) -> None:
    """One line at start when a pinned shadow will score nothing: it scores what capture samples."""
    if capture is None or capture.store_url is None:
        reason = "capture is off"
    elif capture.sample_rate <= 0.0:
        reason = "capture samples nothing (CHURN_CAPTURE_SAMPLE_RATE=0)"
    else:
        return
    log_event(
        logger,
        logging.WARNING,
        "shadow_idle",
        reason=reason,
        shadow_uri=shadow.uri,
        shadow_sha256=shadow.sha256,
        shadow_version=shadow.version,
    )


def create_app(
    settings: Settings, *, model: Model | None = None, capture: CaptureSettings | None = None
) -> Litestar:
    """Build the app: ready at once with ``model``, else it loads the pinned model at start."""
    state = ServiceState(settings=settings, metrics=Metrics())
    state.shadow = Shadow.from_settings(settings, ShadowMetrics(state.metrics.registry))
    if capture is not None and capture.store_url is not None:
        state.capture = Capture(
            capture, CaptureMetrics(state.metrics.registry), shadow=state.shadow
        )
    if state.shadow is not None:
        _say_if_shadow_idle(state.shadow, capture)
    info = ModelInfo(state, state.shadow)
    if model is not None:
        _mark_ready(state, _warmed(state, model), 0.0)
    tasks: set[asyncio.Task[None]] = set()

    async def start_loading() -> None:
        if state.model is not None:  # ready at once, or serving again after a lifespan restart
            state.reason = None
            state.metrics.model_ready.set(1)
        elif state.reason == "loading":
            task = asyncio.create_task(asyncio.to_thread(_load, state, time.perf_counter()))
            tasks.add(task)  # keep a reference: the loop holds tasks weakly
            task.add_done_callback(tasks.discard)
        if state.capture is not None:
            state.capture.start()
        if not info.started:  # lineage and the shadow load beside the primary, not before it
            info.started = True
            side = asyncio.create_task(asyncio.to_thread(info.load))
            tasks.add(side)
            side.add_done_callback(tasks.discard)

    def stop() -> None:
        # The server has stopped accepting; whatever still asks must not be routed here.
        state.reason = "shutting_down"
        state.metrics.model_ready.set(0)
        log_event(logger, logging.INFO, "shutting_down")

    async def stop_capture() -> None:
        if state.capture is not None:
            await state.capture.stop()

    def service() -> ServiceState:
        return state

    middleware, guards, stores = _access_control(settings, state.metrics)

    plugins, tracer_provider = tracing_plugins(
        settings.otlp_endpoint, settings.model_version, PROBE_ROUTES
    )

    feedback, close_feedback_store = feedback_handlers(
        capture.store_url if capture else None, capture.customer_id_key if capture else None
    )

    async def flush_traces() -> None:
        if tracer_provider is not None:
            await asyncio.to_thread(tracer_provider.shutdown)

    app = Litestar(
        plugins=plugins,
        route_handlers=[
            *HANDLERS,
            *feedback,
            *info.handlers(),
        ],
        dependencies={"service": Provide(service, use_cache=True, sync_to_thread=False)},
        middleware=middleware,
        guards=guards,
        stores=stores,
        on_startup=[start_loading],
        on_shutdown=[stop, stop_capture, close_feedback_store, flush_traces],
        openapi_config=None,
        logging_config=None,
        request_max_body_size=settings.max_body_bytes,
        exception_handlers={
            ApiError: _api_error,
            TooManyRequestsException: _throttled,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.state.service = state
    app.state.model_info = info
    app.asgi_handler = observed(app.asgi_handler, state)
    return app


def app_from_env() -> Litestar:
    """The server's factory: settings from the environment, JSON logs, then the app."""
    settings = load_settings(os.environ)
    configure_logging(settings.log_level)
    return create_app(settings, capture=load_capture_settings(os.environ))
