"""The shadow model: a pinned challenger scored beside the primary, never in its place.

``SHADOW_MODEL_URI``, ``SHADOW_MODEL_SHA256`` and ``SHADOW_MODEL_VERSION``
(``overlays/<env>/shadow.yaml``) name it. It is fetched, verified and warmed by
the same ``load_model`` as the primary, in the background. A refused shadow is
a log line (``shadow_refused``) and a count in
``churn_api_shadow_load_failures_total``; the service stays ready on its
primary, and readiness never waits for the shadow.

The shadow scores exactly the records capture samples, and nothing else: no
route touches it. Capture's flush thread (``capture.py``) asks it once per
flushed batch (``Shadow.score``: one vectorised ``probabilities`` call), stores
its probability, version and sha256 beside the primary's in each row, and,
once the rows are written, adds the batch to the comparison (``Shadow.count``):
``churn_api_shadow_predictions_total``, ``churn_api_shadow_disagreements_total``
(the two models' decisions differ, each at its own threshold) and the
``churn_api_shadow_probability_delta`` histogram. A shadow that fails to score
a batch is counted in ``churn_api_shadow_errors_total`` and its rows are written
without a shadow probability, as are rows flushed while no shadow is loaded.
With capture off (or sampling nothing) a pinned shadow loads but scores nothing.

Steps per flushed batch:

1. ``score``: the shadow's probabilities of the batch's features and its
   decisions at its own threshold, or None (none loaded, or it failed);
2. the capture writes the rows;
3. ``count``: predictions, disagreements and the |delta| histogram, with numpy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge

from churn_api.contract import CustomerRecord
from churn_api.counting import CounterFamily, HistogramFamily
from churn_api.logs import log_event
from churn_api.model import Model, load_model
from churn_api.settings import Settings
from churn_api.storage import LOAD_FAILURE_REASONS, ModelLoadError

__all__ = ["DELTA_BUCKETS", "Shadow", "ShadowMetrics", "ShadowScores"]

DELTA_BUCKETS: Final = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
_BOUNDS: Final = np.array(DELTA_BUCKETS)
logger = logging.getLogger("churn_api")


class _Comparison:
    """Predictions, disagreements and the probability delta, in counting.py's lock-free families.

    Only capture's flush thread adds to them, one batch at a time, so they need
    no lock; a scrape reads whole values (the bucket list is replaced, never
    changed in place).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._predictions = CounterFamily(
            "churn_api_shadow_predictions",
            "Captured records the shadow model scored beside the primary.",
        )
        self._disagreements = CounterFamily(
            "churn_api_shadow_disagreements",
            "Captured records whose churn decision differs between the shadow and the primary.",
        )
        self._delta = HistogramFamily(
            "churn_api_shadow_probability_delta",
            "|shadow probability - primary probability| per captured record the shadow scored.",
            buckets=DELTA_BUCKETS,
        )
        for family in (self._predictions, self._disagreements, self._delta):
            registry.register(family)

    @property
    def predictions(self) -> int:
        return self._predictions.labels().value

    @property
    def disagreements(self) -> int:
        return self._disagreements.labels().value

    def observe_batch(
        self, delta: npt.NDArray[np.float64], disagree: npt.NDArray[np.bool_]
    ) -> None:
        """Add a batch: each record's |delta| and whether the two decisions differ."""
        # side="left" puts a delta equal to a bound in that bound's bucket (Prometheus' "le").
        index = np.searchsorted(_BOUNDS, delta, side="left")
        counts = np.bincount(index, minlength=len(DELTA_BUCKETS) + 1).tolist()
        self._delta.labels().add(counts, float(delta.sum()))
        self._disagreements.labels().value += int(np.count_nonzero(disagree))
        self._predictions.labels().value += len(delta)


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
        self.comparison = _Comparison(registry)
        self.errors = Counter(
            "churn_api_shadow_errors",
            "Captured records the shadow model failed to score (stored without its probability).",
            registry=registry,
        )


class ShadowScores(NamedTuple):
    """What the shadow said of one flushed batch, in the batch's order."""

    probabilities: npt.NDArray[np.float64]
    churn: npt.NDArray[np.bool_]  # at the shadow's own threshold


class Shadow:
    """A pinned challenger: loaded in the background, scored by capture's flush thread."""

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

    def score(self, records: Sequence[CustomerRecord]) -> ShadowScores | None:
        """The shadow's answers for ``records`` in one call; None when none is loaded or it fails.

        A failure counts every record in ``churn_api_shadow_errors_total``: the
        primary's rows are written all the same, without the shadow's columns.
        """
        model = self.model
        if model is None:
            return None
        try:
            probabilities = np.asarray(model.probabilities(records), dtype=np.float64)
            if probabilities.shape != (len(records),):
                raise ValueError(f"{probabilities.shape} probabilities for {len(records)} records")
            return ShadowScores(probabilities, probabilities >= model.threshold)
        except Exception:  # the shadow must never cost the primary's rows
            self.metrics.errors.inc(len(records))
            return None

    def count(
        self,
        scores: ShadowScores,
        primary: npt.NDArray[np.float64],
        primary_churn: npt.NDArray[np.bool_],
    ) -> None:
        """Add a written batch to the comparison, against the primary's answers for it."""
        self.metrics.comparison.observe_batch(
            np.abs(scores.probabilities - primary), scores.churn != primary_churn
        )
