"""Prediction capture: a sample of predictions, written to the store off the request path.

A prediction route calls ``Capture.offer`` (a list append, or a counted drop
when the queue is full) and answers at once. A background task flushes the
queue in batches every ``flush_seconds``, or sooner when a batch is full, on
one flush thread of its own so the event loop never waits on the store. When
the store is down or slow the queue fills, further records are dropped and
counted, one log line per interval says so, and predictions keep flowing; the
next flush that reaches the store resumes capture by itself.

With a shadow model pinned and loaded, the flush thread has it score each batch
(one vectorised call, ``Shadow.score``) before writing, stores its probability,
version and sha256 in each row, and adds the written batch to the shadow's
comparison metrics (``Shadow.count``). A shadow that fails, or none loaded,
leaves those columns NULL; the primary's rows are written all the same.

What a crash can lose: the records still in the queue (at most ``queue_size``
per process, about ``flush_seconds`` of traffic), never a prediction.

A ``customer_id`` is stored as given, or as HMAC-SHA256 under
``CHURN_CAPTURE_CUSTOMER_ID_KEY`` when that is set, so the store holds no
customer identifier in clear and feedback by customer id still finds it.

Every few minutes the same task also drops expired partitions (retention) and
reads the monitor's latest numbers into gauges, so the live quality that the
``churn-monitor`` workflow computes reaches Prometheus by the service's own
``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
from churn_store.outcomes import hash_customer_id
from churn_store.prediction_store import (
    CapturedPrediction,
    MonitorResult,
    PredictionStore,
    StoreError,
    open_store,
)
from prometheus_client import CollectorRegistry, Counter, Gauge

from churn_api.logs import log_event
from churn_api.model import Model
from churn_api.schemas import PredictResponse
from churn_api.settings import SettingsError
from churn_api.shadow import Shadow

__all__ = [
    "LIVE_METRICS",
    "Capture",
    "CaptureMetrics",
    "CaptureSettings",
    "load_capture_settings",
]

logger = logging.getLogger("churn_api.capture")
_encoder = msgspec.json.Encoder()
# The monitor's per-version numbers the service exposes as churn_model_live_<name>.
LIVE_METRICS: Final = (
    "predictions",
    "labelled",
    "label_coverage",
    "roc_auc",
    "pr_auc",
    "brier",
    "accuracy",
    "prediction_psi",
    "max_feature_psi",
)


class CaptureSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Capture's settings; ``store_url`` None means capture is off."""

    store_url: str | None = None
    sample_rate: float = 1.0
    batch_size: int = 500
    flush_seconds: float = 1.0
    queue_size: int = 20_000
    retention_days: int = 90
    customer_id_key: bytes | None = None
    # How often the retention drop and the live-quality gauges run.
    housekeeping_seconds: float = 300.0


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: not a number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={raw}: must be between {low:g} and {high:g}")
    return value


def _read_url_file(path: str) -> str:
    """The URL in a mounted Secret's file; "" (capture off) when the optional Secret is absent."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        # An optional Secret volume that is not there yet: the service serves without capture.
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"CHURN_CAPTURE_URL_FILE={path}: cannot read it ({exc})") from None


def load_capture_settings(env: Mapping[str, str]) -> CaptureSettings:
    """Read the ``CHURN_CAPTURE_*`` variables; raise ``SettingsError`` naming each wrong one.

    The store's URL is ``CHURN_CAPTURE_URL`` or, when that is unset, the content of the file
    ``CHURN_CAPTURE_URL_FILE`` names (the clusters mount it from a Secret, which keeps the
    password out of the pod's environment); a missing file means capture is off.
    """
    errors: list[str] = []
    values: dict[str, Any] = {}
    url = env.get("CHURN_CAPTURE_URL", "").strip()
    url_file = env.get("CHURN_CAPTURE_URL_FILE", "").strip()
    if not url and url_file:
        try:
            url = _read_url_file(url_file)
        except SettingsError as exc:
            errors.append(str(exc))
    if url:
        if not url.startswith(("postgresql://", "postgres://", "sqlite:///")):
            errors.append("CHURN_CAPTURE_URL: must start with postgresql:// or sqlite:///")
        values["store_url"] = url
    specs: tuple[tuple[str, str, float, float, float, bool], ...] = (
        ("sample_rate", "CHURN_CAPTURE_SAMPLE_RATE", 1.0, 0.0, 1.0, False),
        ("batch_size", "CHURN_CAPTURE_BATCH_SIZE", 500, 1, 100_000, True),
        ("flush_seconds", "CHURN_CAPTURE_FLUSH_SECONDS", 1.0, 0.01, 3600, False),
        ("queue_size", "CHURN_CAPTURE_QUEUE_SIZE", 20_000, 1, 10_000_000, True),
        ("retention_days", "CHURN_CAPTURE_RETENTION_DAYS", 90, 1, 3650, True),
    )
    for field, name, default, low, high, whole in specs:
        try:
            value = _number(env, name, default, low, high)
            if whole and value != int(value):
                raise SettingsError(f"{name}={value:g}: must be a whole number")
            values[field] = int(value) if whole else value
        except SettingsError as exc:
            errors.append(str(exc))
    key = env.get("CHURN_CAPTURE_CUSTOMER_ID_KEY", "")
    if key:
        values["customer_id_key"] = key.encode()
    if errors:
        raise SettingsError("invalid settings: " + "; ".join(errors))
    return msgspec.convert(values, CaptureSettings)


class CaptureMetrics:
    """``churn_api_capture_*`` and ``churn_model_live_*`` on the service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.written = Counter(
            "churn_api_capture_written_total",
            "Captured predictions written to the prediction store.",
            registry=registry,
        )
        self.dropped = Counter(
            "churn_api_capture_dropped_total",
            "Captured predictions dropped instead of written, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in ("queue_full", "store_error"):
            self.dropped.labels(reason)
        self.queue_depth = Gauge(
            "churn_api_capture_queue_depth",
            "Captured predictions waiting to be written.",
            registry=registry,
        )
        self.store_up = Gauge(
            "churn_api_capture_store_up",
            "1 when the last write to the prediction store succeeded, else 0.",
            registry=registry,
        )
        self.live = {
            name: Gauge(
                f"churn_model_live_{name}",
                f"The monitor's {name.replace('_', ' ')} over its window, per model version.",
                ["model_version"],
                registry=registry,
            )
            for name in LIVE_METRICS
        }
        self.live_day = Gauge(
            "churn_model_live_day_timestamp_seconds",
            "Day of the monitor's latest run (UTC midnight), per model version.",
            ["model_version"],
            registry=registry,
        )


# One queued record: (id, time, version, sha256, customer id, features struct, p, churn, threshold)
_Pending = tuple[str, datetime, str, str, str | None, Any, float, bool, float]


class Capture:
    """The bounded queue, the task that flushes it and the thread that writes (and shadows) it."""

    def __init__(
        self,
        settings: CaptureSettings,
        metrics: CaptureMetrics,
        store_factory: Callable[[str], PredictionStore] = open_store,
        shadow: Shadow | None = None,
    ) -> None:
        assert settings.store_url is not None
        self.settings = settings
        self.metrics = metrics
        self.shadow = shadow
        self._store_factory = store_factory
        self._store: PredictionStore | None = None
        self._queue: list[_Pending] = []
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._random = random.Random()  # noqa: S311 - sampling, not security
        self._dropped_since_log: dict[str, int] = {}
        self._last_housekeeping = 0.0
        self._migrated = False
        # One thread does every store call and shadow scoring, so they never overlap (not even
        # when stop() flushes while a cancelled flush is still writing) and the shadow's
        # comparison counters have a single writer.
        self._flush_thread: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ request path
    def predictions(
        self, model: Model, responses: Sequence[PredictResponse], requests: Sequence[Any]
    ) -> None:
        """Queue a sample of these answered predictions (``requests`` hold the features)."""
        rate = self.settings.sample_rate
        if rate <= 0.0:
            return
        sha, threshold = model.sha256, model.threshold
        pending = [
            (r.prediction_id, r.timestamp, r.model_version, sha, q.customer_id, q,
             r.probability, r.churn, threshold)
            for r, q in zip(responses, requests, strict=True)
            if rate >= 1.0 or self._random.random() < rate
        ]  # fmt: skip
        if pending:
            self.offer(pending)

    def offer(self, pending: Sequence[_Pending]) -> None:
        """Queue records for the store, or count them dropped when the queue is full."""
        room = self.settings.queue_size - len(self._queue)
        if room < len(pending):
            self._drop("queue_full", len(pending) - max(room, 0))
            pending = pending[: max(room, 0)]
        self._queue.extend(pending)
        if len(self._queue) >= self.settings.batch_size:
            self._full.set()

    def _drop(self, reason: str, count: int) -> None:
        if count <= 0:
            return
        self.metrics.dropped.labels(reason).inc(count)
        self._dropped_since_log[reason] = self._dropped_since_log.get(reason, 0) + count

    # ------------------------------------------------------------------ background
    def start(self) -> None:
        """Start the flushing task on the running loop."""
        if self._task is None or self._task.done():
            # An Event belongs to the loop that first waits on it: a lifespan restarted on
            # another loop (a test client, an embedding server) needs one of its own.
            self._full = asyncio.Event()
            if len(self._queue) >= self.settings.batch_size:
                self._full.set()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Flush what is queued (bounded by one write), then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._flush()
        if self._store is not None:
            await self._on_flush_thread(self._store.close)
        if self._flush_thread is not None:
            self._flush_thread.shutdown(wait=False)  # idle: close() was its last job
            self._flush_thread = None

    def _on_flush_thread(self, fn: Callable[..., None], *args: Any) -> asyncio.Future[None]:
        if self._flush_thread is None:
            self._flush_thread = ThreadPoolExecutor(1, thread_name_prefix="churn-capture-flush")
        return asyncio.get_running_loop().run_in_executor(self._flush_thread, fn, *args)

    async def _run(self) -> None:
        interval = self.settings.flush_seconds
        # At once: the store is migrated and the live gauges are set before traffic needs them.
        self._last_housekeeping = time.monotonic()
        await self._on_flush_thread(self._housekeeping)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), timeout=interval)
            self._full.clear()
            await self._flush()
            self._log_drops()
            if time.monotonic() - self._last_housekeeping >= self.settings.housekeeping_seconds:
                self._last_housekeeping = time.monotonic()
                await self._on_flush_thread(self._housekeeping)

    async def _flush(self) -> None:
        while self._queue:
            size = self.settings.batch_size
            batch, self._queue = self._queue[:size], self._queue[size:]
            self.metrics.queue_depth.set(len(self._queue))
            try:
                await self._on_flush_thread(self._write, batch)
            except StoreError as exc:
                self.metrics.store_up.set(0)
                self._drop("store_error", len(batch))
                self._last_error = str(exc)
                return  # the rest waits for the next interval (or is dropped if it overflows)
            self.metrics.store_up.set(1)
            self.metrics.written.inc(len(batch))
        self.metrics.queue_depth.set(0)

    def _connected(self) -> PredictionStore:
        if self._store is None:
            self._store = self._store_factory(self.settings.store_url or "")
        if not self._migrated:
            self._store.migrate()
            self._migrated = True
        return self._store

    def _write(self, batch: list[_Pending]) -> None:
        # On the flush thread: encoding the features and scoring the shadow here keeps the
        # request path to an append.
        key = self.settings.customer_id_key
        shadow = self.shadow
        scores = None if shadow is None else shadow.score([item[5] for item in batch])
        shadow_probabilities: list[float | None]
        if shadow is None or scores is None:
            shadow_probabilities = [None] * len(batch)
            shadow_version = shadow_sha256 = None
        else:
            shadow_probabilities = scores.probabilities.tolist()
            shadow_version, shadow_sha256 = shadow.version, shadow.sha256
        rows = []
        for (pid, at, version, sha, customer_id, features, p, churn, threshold), shadow_p in zip(
            batch, shadow_probabilities, strict=True
        ):
            values = msgspec.to_builtins(features)
            values.pop("customer_id", None)
            rows.append(
                CapturedPrediction(
                    pid,
                    at,
                    version,
                    sha,
                    None if customer_id is None else hash_customer_id(customer_id, key),
                    _encoder.encode(values).decode(),
                    p,
                    churn,
                    threshold,
                    shadow_p,
                    shadow_version,
                    shadow_sha256,
                )
            )
        self._connected().write_predictions(rows)
        if shadow is not None and scores is not None:
            # After the write: the comparison counts what the store holds, not what it refused.
            shadow.count(
                scores,
                np.fromiter((item[6] for item in batch), dtype=np.float64, count=len(batch)),
                np.fromiter((item[7] for item in batch), dtype=np.bool_, count=len(batch)),
            )

    def _log_drops(self) -> None:
        if not self._dropped_since_log:
            return
        log_event(
            logger,
            logging.WARNING,
            "capture_dropped",
            dropped=dict(self._dropped_since_log),
            store=self._store.url_for_logs if self._store else None,
            error=getattr(self, "_last_error", None),
        )
        self._dropped_since_log.clear()

    def _housekeeping(self) -> None:
        try:
            store = self._connected()
            store.drop_expired(self.settings.retention_days, datetime.now(UTC))
            self.publish_live(store.latest_monitor_results())
        except StoreError as exc:
            log_event(logger, logging.WARNING, "capture_housekeeping_failed", error=str(exc))

    def publish_live(self, results: Sequence[MonitorResult]) -> None:
        """Set the ``churn_model_live_*`` gauges from the monitor's latest numbers."""
        for r in results:
            # The window's numbers, not one day's: window.roc_auc -> churn_model_live_roc_auc.
            name = r.metric.removeprefix("window.")
            gauge = self.metrics.live.get(name)
            if name == r.metric or gauge is None or r.feature or r.value is None:
                continue
            gauge.labels(r.model_version).set(r.value)
            day = datetime(r.day.year, r.day.month, r.day.day, tzinfo=UTC).timestamp()
            self.metrics.live_day.labels(r.model_version).set(day)
