"""The service's Prometheus metrics: exactly the table in the service README.

Each app gets its own registry, so tests can build many apps in one process.
The four families every request or prediction touches (requests, their
duration, predictions, probabilities) are plain numbers (``counting.py``):
no lock per observation, and each route keeps its series instead of looking
them up by label. A batch's outcomes and probabilities are counted with numpy,
not one Python call per record, so a 10,000-record batch costs microseconds,
not milliseconds, to observe.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from churn_api.counting import Buckets, Count, CounterFamily, HistogramFamily
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


class Metrics:
    """Every metric of the service, registered on one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = CounterFamily(
            "churn_api_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
        )
        self.request_duration = HistogramFamily(
            "churn_api_request_duration_seconds",
            "Time from the request's arrival to the end of its response.",
            ["route", "method"],
            buckets=DURATION_BUCKETS,
        )
        self.predictions = CounterFamily(
            "churn_api_predictions",
            "Predictions by outcome and model version.",
            ["outcome", "model_version"],
        )
        self.probability = HistogramFamily(
            "churn_api_prediction_probability",
            "Predicted churn probability.",
            ["model_version"],
            buckets=PROBABILITY_BUCKETS,
        )
        for family in (self.requests, self.request_duration, self.predictions, self.probability):
            self.registry.register(family)
        self._probability_bounds = np.array(self.probability.bounds)
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
        # Each label set's series, kept so that a request looks them up once, by one key.
        self._request_series: dict[tuple[str, str, int], tuple[Count, Buckets]] = {}
        self._prediction_series: dict[tuple[str, bool], tuple[Count, Buckets]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one response and its duration."""
        key = (route, method, status)
        series = self._request_series.get(key)
        if series is None:
            series = self._request_series[key] = (
                self.requests.labels(route, method, str(status)),
                self.request_duration.labels(route, method),
            )
        count, duration = series
        count.value += 1
        duration.observe(seconds)

    def observe_predictions(
        self, model_version: str, probabilities: npt.NDArray[np.float64], threshold: float
    ) -> None:
        """Count outcomes and record the probabilities of one request's predictions."""
        churned = int(np.count_nonzero(probabilities >= threshold))
        if churned:
            self.predictions.labels("churn", model_version).value += churned
        if churned < len(probabilities):
            self.predictions.labels("no_churn", model_version).value += len(probabilities) - churned
        # searchsorted 'left' puts p into the first bucket whose bound is >= p (Prometheus' le).
        index = np.searchsorted(self._probability_bounds, probabilities, side="left")
        counts = np.bincount(index, minlength=len(self._probability_bounds) + 1)
        self.probability.labels(model_version).add(counts.tolist(), float(probabilities.sum()))

    def observe_prediction(self, model_version: str, probability: float, churn: bool) -> None:
        """Count one prediction (the single-record route's cheaper path)."""
        key = (model_version, churn)
        series = self._prediction_series.get(key)
        if series is None:
            series = self._prediction_series[key] = (
                self.predictions.labels("churn" if churn else "no_churn", model_version),
                self.probability.labels(model_version),
            )
        count, buckets = series
        count.value += 1
        buckets.observe(probability)
