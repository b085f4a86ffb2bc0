"""The shadow model: a pinned challenger scored beside the primary, never in its place.

``SHADOW_MODEL_URI``, ``SHADOW_MODEL_SHA256`` and ``SHADOW_MODEL_VERSION``
(``overlays/<env>/shadow.yaml``) name it. It is fetched, verified and warmed by
the same ``load_model`` as the primary, in the background. A refused shadow is
a log line (``shadow_refused``) and a count in
``churn_api_shadow_load_failures_total``; the service stays ready on its
primary, and readiness never waits for the shadow.

Once loaded it scores each prediction after the response has been sent, so it
changes neither the answer nor its latency. Any error while scoring is counted
and swallowed. The live evidence: ``churn_api_shadow_predictions_total``,
``churn_api_shadow_disagreements_total`` (the two models' decisions differ, each
at its own threshold) and ``churn_api_shadow_probability_delta`` (single-record
predictions). The capture
path reads a record's shadow probability through ``Shadow.probability``.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Final

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from churn_api.contract import CustomerRecord
from churn_api.logs import log_event
from churn_api.model import Model, load_model
from churn_api.settings import Settings
from churn_api.storage import LOAD_FAILURE_REASONS, ModelLoadError

__all__ = ["DELTA_BUCKETS", "Shadow", "ShadowMetrics"]

DELTA_BUCKETS: Final = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
logger = logging.getLogger("churn_api")


class _Comparison(Collector):
    """Predictions, disagreements and the probability delta as plain numbers.

    One Python addition per record instead of prometheus_client's locked
    counters: the shadow runs on every prediction and must stay cheap.
    """

    def __init__(self) -> None:
        self.predictions = 0
        self.disagreements = 0
        self.bucket_counts = [0] * (len(DELTA_BUCKETS) + 1)
        self.delta_sum = 0.0

    def observe(self, delta: float, disagree: bool) -> None:
        self.predictions += 1
        self.disagreements += disagree
        self.bucket_counts[bisect_left(DELTA_BUCKETS, delta)] += 1
        self.delta_sum += delta

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "churn_api_shadow_predictions",
            "Records the shadow model scored beside the primary.",
            value=self.predictions,
        )
        yield CounterMetricFamily(
            "churn_api_shadow_disagreements",
            "Records whose churn decision differs between the shadow and the primary.",
            value=self.disagreements,
        )
        cumulative = list(accumulate(self.bucket_counts))
        buckets = [(str(b), float(c)) for b, c in zip(DELTA_BUCKETS, cumulative, strict=False)]
        buckets.append(("+Inf", float(cumulative[-1])))
        yield HistogramMetricFamily(
            "churn_api_shadow_probability_delta",
            "|shadow probability - primary probability| per /v1/predict record.",
            buckets=buckets,
            sum_value=self.delta_sum,
        )

    def describe(self) -> Iterator[Metric]:
        return iter(())


class ShadowMetrics:
    """The shadow's metrics; registered whether or not a shadow is pinned, so rates start at 0."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.ready = Gauge(
            "churn_api_shadow_ready",
            "1 once the pinned shadow model is verified and loaded, else 0.",
            registry=registry,
        )
        self.load_failures = Counter(
            "churn_api_shadow_load_failures",
            "Shadow models refused at start, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in LOAD_FAILURE_REASONS:
            self.load_failures.labels(reason)
        self.comparison = _Comparison()
        registry.register(self.comparison)
        self.errors = Counter(
            "churn_api_shadow_errors",
            "Records the shadow model failed to score (the response was already sent).",
            registry=registry,
        )


class Shadow:
    """A pinned challenger: loaded in the background, scored off the response path."""

    def __init__(self, uri: str, sha256: str, version: str, metrics: ShadowMetrics) -> None:
        self.uri, self.sha256, self.version = uri, sha256, version
        self.metrics = metrics
        self.model: Model | None = None
        self.reason: str | None = "loading"

    @classmethod
    def from_settings(cls, settings: Settings, metrics: ShadowMetrics) -> Shadow | None:
        """The pinned shadow, or None when the environment pins none."""
        if settings.shadow_model_uri is None:
            return None
        assert settings.shadow_model_sha256 is not None  # settings check all three or none
        assert settings.shadow_model_version is not None
        return cls(
            settings.shadow_model_uri,
            settings.shadow_model_sha256,
            settings.shadow_model_version,
            metrics,
        )

    def load(self) -> None:
        """Fetch, verify and warm the shadow; on refusal count it, log it, carry on."""
        pin = {"shadow_uri": self.uri, "shadow_sha256": self.sha256, "shadow_version": self.version}
        started = time.perf_counter()
        try:
            self.model, _ = load_model(self.uri, self.sha256, self.version)
        except ModelLoadError as exc:
            failure = exc
        except Exception as exc:  # a bug or an unforeseen artifact: refuse it all the same
            failure = ModelLoadError("invalid_model", f"{type(exc).__name__}: {exc}")
        else:
            self.reason = None
            self.metrics.ready.set(1)
            log_event(
                logger,
                logging.INFO,
                "shadow_ready",
                **pin,
                scorer=self.model.scorer,
                load_seconds=round(time.perf_counter() - started, 4),
            )
            return
        self.reason = failure.reason
        self.metrics.load_failures.labels(failure.reason).inc()
        log_event(
            logger,
            logging.WARNING,
            "shadow_refused",
            reason=failure.reason,
            detail=failure.detail,
            **pin,
        )

    def probability(self, record: CustomerRecord) -> float | None:
        """The shadow's churn probability of ``record``; None when none is loaded or it fails."""
        model = self.model
        if model is None:
            return None
        try:
            return model.probability(record)
        except Exception:  # the shadow must never take a prediction down
            self.metrics.errors.inc()
            return None

    def observe_one(self, record: CustomerRecord, primary: float, primary_churn: bool) -> None:
        """Score one record answered with ``primary`` and record how the two compare."""
        p = self.probability(record)
        model = self.model
        if p is None or model is None:
            return
        self.metrics.comparison.observe(abs(p - primary), (p >= model.threshold) != primary_churn)

    def observe(
        self,
        records: Sequence[CustomerRecord],
        primary: npt.NDArray[np.float64],
        primary_threshold: float,
    ) -> None:
        """Score a batch answered with ``primary`` and record how the two compare."""
        model = self.model
        if model is None:
            return
        try:
            p = model.probabilities(records)
        except Exception:  # the shadow must never take a prediction down
            self.metrics.errors.inc(len(records))
            return
        # No per-record histogram here: one Python call per record would cost a 10,000-record
        # batch milliseconds; the single-record route feeds the delta histogram.
        comparison = self.metrics.comparison
        comparison.predictions += len(records)
        differ = (p >= model.threshold) != (primary >= primary_threshold)
        comparison.disagreements += int(np.count_nonzero(differ))
