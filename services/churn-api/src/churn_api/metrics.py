"""The service's Prometheus metrics: exactly the table in the service README.

Each app gets its own registry, so tests can build many apps in one process.
Prediction outcomes and probabilities are counted per request with numpy (a
custom collector), not one Python call per record, so a 10,000-record batch
costs microseconds, not milliseconds, to observe.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Final

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from churn_api.storage import LOAD_FAILURE_REASONS

__all__ = [
    "BATCH_SIZE_BUCKETS",
    "DURATION_BUCKETS",
    "PROBABILITY_BUCKETS",
    "Metrics",
]

# The *_created series are not in the README's table; nothing reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

DURATION_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PROBABILITY_BUCKETS: Final = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
BATCH_SIZE_BUCKETS: Final = (1, 10, 100, 500, 1000, 2500, 5000, 10000)


class _ProbabilityHistogram(Collector):
    """``churn_api_prediction_probability``: bucket counts kept as numpy arrays."""

    def __init__(self) -> None:
        self._bounds = np.array(PROBABILITY_BUCKETS, dtype=np.float64)
        self._counts: dict[str, npt.NDArray[np.int64]] = {}
        self._sums: dict[str, float] = {}

    def observe(self, model_version: str, probabilities: npt.NDArray[np.float64]) -> None:
        # searchsorted 'left' puts p into the first bucket whose bound is >= p (Prometheus' le).
        index = np.searchsorted(self._bounds, probabilities, side="left")
        counts = np.bincount(index, minlength=len(self._bounds) + 1)
        if model_version not in self._counts:
            self._counts[model_version] = np.zeros(len(self._bounds) + 1, dtype=np.int64)
            self._sums[model_version] = 0.0
        self._counts[model_version] += counts
        self._sums[model_version] += float(probabilities.sum())

    def observe_one(self, model_version: str, probability: float) -> None:
        # The single-record path: bisect instead of numpy, whose call overhead dominates one value.
        counts = self._counts.get(model_version)
        if counts is None:
            self.observe(model_version, np.array([probability]))
            return
        counts[bisect_left(PROBABILITY_BUCKETS, probability)] += 1
        self._sums[model_version] += probability

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            "churn_api_prediction_probability",
            "Predicted churn probability.",
            labels=["model_version"],
        )
        for version, counts in self._counts.items():
            cumulative = np.cumsum(counts)
            buckets = [
                (str(b), float(c)) for b, c in zip(PROBABILITY_BUCKETS, cumulative, strict=False)
            ]
            buckets.append(("+Inf", float(cumulative[-1])))
            family.add_metric([version], buckets, self._sums[version])
        yield family

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(
            "churn_api_prediction_probability",
            "Predicted churn probability.",
            labels=["model_version"],
        )


class Metrics:
    """Every metric of the service, registered on one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "churn_api_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "churn_api_request_duration_seconds",
            "Time from the request's arrival to the end of its response.",
            ["route", "method"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "churn_api_predictions",
            "Predictions by outcome and model version.",
            ["outcome", "model_version"],
            registry=self.registry,
        )
        self.probability = _ProbabilityHistogram()
        self.registry.register(self.probability)
        self.batch_size = Histogram(
            "churn_api_batch_size",
            "Records per /v1/predict/batch request.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.model_info = Gauge(
            "churn_api_model_info",
            "The model that serves (always 1).",
            ["model_version", "sha256"],
            registry=self.registry,
        )
        self.model_ready = Gauge(
            "churn_api_model_ready",
            "1 once a verified model is loaded and warmed, else 0.",
            registry=self.registry,
        )
        self.model_load_duration = Gauge(
            "churn_api_model_load_duration_seconds",
            "Seconds from start to ready.",
            registry=self.registry,
        )
        self.model_load_failures = Counter(
            "churn_api_model_load_failures",
            "Models refused at start, by reason.",
            ["reason"],
            registry=self.registry,
        )
        for (
            reason
        ) in LOAD_FAILURE_REASONS:  # every reason is a series from the start: rate() needs a 0
            self.model_load_failures.labels(reason)
        self.shed = Counter(
            "churn_api_shed_requests",
            "Requests answered 503 at once because too many were in flight.",
            registry=self.registry,
        )
        # No client label: token subjects are unbounded; the "throttled" log line names the client.
        self.throttled = Counter(
            "churn_api_throttled_requests",
            "Requests answered 429 because their client was over its quota.",
            registry=self.registry,
        )
        self.quota_store_errors = Counter(
            "churn_api_quota_store_errors",
            "Quota checks that could not reach the counter store (the request was let through).",
            registry=self.registry,
        )
        self._prediction_children: dict[tuple[str, bool], Counter] = {}
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one response and its duration."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.request_duration.labels(route, method),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_predictions(
        self, model_version: str, probabilities: npt.NDArray[np.float64], threshold: float
    ) -> None:
        """Count outcomes and record the probabilities of one request's predictions."""
        churned = int(np.count_nonzero(probabilities >= threshold))
        if churned:
            self.predictions.labels("churn", model_version).inc(churned)
        if churned < len(probabilities):
            self.predictions.labels("no_churn", model_version).inc(len(probabilities) - churned)
        self.probability.observe(model_version, probabilities)

    def observe_prediction(self, model_version: str, probability: float, churn: bool) -> None:
        """Count one prediction (the single-record route's cheaper path)."""
        key = (model_version, churn)
        child = self._prediction_children.get(key)
        if child is None:
            child = self.predictions.labels("churn" if churn else "no_churn", model_version)
            self._prediction_children[key] = child
        child.inc()
        self.probability.observe_one(model_version, probability)
