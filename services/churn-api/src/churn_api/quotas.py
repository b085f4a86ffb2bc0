"""Per-client quotas on Litestar's rate-limit middleware and stores.

``CHURN_API_QUOTA=100/minute`` allows each client 100 requests per minute; the
next one answers 429 with ``Retry-After`` (seconds until the window resets) and
the ``RateLimit-*`` headers. A client is the authenticated principal
(``key:<name>`` or ``jwt:<sub>``, see ``auth.py``), else the peer address.
Probes and ``/metrics`` are never limited.

Counters live in Litestar's ``MemoryStore`` (one process) or, when
``CHURN_API_REDIS_URL`` is set, in a ``RedisStore`` shared by every replica under
``CHURN_API_QUOTA_NAMESPACE``. Litestar's middleware reads and writes a
client's window without a cross-process lock, so under a burst spread over
replicas a client can get a few requests more than its quota; never fewer.

A store that fails (Redis down) lets requests through: a quota protects the
service, it must not take predictions down. Each such failure is logged and
counted in ``churn_api_quota_store_errors_total``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Final, cast

from litestar import Request
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import (
    DURATION_VALUES,
    CacheObject,
    DurationUnit,
    RateLimitConfig,
    RateLimitMiddleware,
)
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore

from churn_api.auth import Principal
from churn_api.logs import log_event
from churn_api.metrics import Metrics

__all__ = [
    "QUOTA_STORE",
    "QuotaConfig",
    "QuotaMiddleware",
    "client_of",
    "parse_quota",
    "quota_middleware",
    "quota_store",
]

QUOTA_STORE: Final = "quota"
logger = logging.getLogger("churn_api")


def parse_quota(text: str) -> tuple[DurationUnit, int]:
    """``"100/minute"`` as Litestar's ``("minute", 100)``."""
    count, _, unit = text.partition("/")
    if unit not in DURATION_VALUES:
        raise ValueError(f"quota {text!r}: the period must be one of {', '.join(DURATION_VALUES)}")
    return unit, int(count)


def client_of(request: Request[Any, Any, Any]) -> str:
    """Whom a request counts against: its principal, else its peer address."""
    user = request.scope.get("user")
    if isinstance(user, Principal):
        return user.subject
    return f"ip:{request.client.host if request.client else 'unknown'}"


@dataclass
class QuotaConfig(RateLimitConfig):
    """Litestar's rate-limit configuration plus the metrics to count store failures in."""

    metrics: Metrics | None = None


class QuotaMiddleware(RateLimitMiddleware):
    """Litestar's rate limiter, failing open (and counted) when its store fails."""

    def _open(self, exc: Exception) -> CacheObject:
        metrics = cast("QuotaConfig", self.config).metrics
        if metrics is not None:
            metrics.quota_store_errors.inc()
        log_event(logger, logging.ERROR, "quota_store_error", detail=f"{type(exc).__name__}: {exc}")
        return CacheObject(history=[], reset=int(time.time()) + DURATION_VALUES[self.unit])

    async def retrieve_cached_history(self, key: str, store: Store) -> CacheObject:
        """The client's window, or an empty one when the store fails."""
        try:
            return await super().retrieve_cached_history(key, store)
        except Exception as exc:  # redis' errors, OSError, a corrupt entry: all fail open
            return self._open(exc)

    async def set_cached_history(self, key: str, cache_object: CacheObject, store: Store) -> None:
        """Record this request, unless the store fails."""
        try:
            await super().set_cached_history(key, cache_object, store)
        except Exception as exc:  # see retrieve_cached_history
            self._open(exc)


def quota_store(redis_url: str, namespace: str) -> Store:
    """Where the counters live: Redis when a URL is given, else this process."""
    if redis_url:
        return RedisStore.with_client(url=redis_url, namespace=namespace)
    return MemoryStore()


def quota_middleware(
    quota: str, metrics: Metrics, exempt: frozenset[str]
) -> tuple[DefineMiddleware, str]:
    """The middleware for ``quota`` and the name of the store it counts in."""
    config = QuotaConfig(
        rate_limit=parse_quota(quota),
        exclude=[f"^{path}$" for path in sorted(exempt)],
        identifier_for_request=client_of,
        middleware_class=QuotaMiddleware,
        store=QUOTA_STORE,
        metrics=metrics,
    )
    return config.middleware, QUOTA_STORE
