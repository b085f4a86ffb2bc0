"""Metrics: the numpy-counted probability histogram agrees with prometheus-client's own."""

from __future__ import annotations

import numpy as np
from churn_api.metrics import PROBABILITY_BUCKETS, Metrics
from prometheus_client import CollectorRegistry, Histogram, generate_latest


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.startswith(name):
                out[(sample.name, *sorted(sample.labels.items()))] = sample.value  # type: ignore[arg-type]
    return out


def test_probability_histogram_matches_a_reference_histogram() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(0, 1, 5000), np.array(PROBABILITY_BUCKETS), [0.0]])
    metrics = Metrics()
    metrics.observe_predictions("7", values[:3000], threshold=0.5)
    for value in values[3000:]:
        metrics.observe_prediction("7", float(value), churn=value >= 0.5)

    reference = CollectorRegistry()
    histogram = Histogram(
        "churn_api_prediction_probability",
        "reference",
        ["model_version"],
        buckets=PROBABILITY_BUCKETS,
        registry=reference,
    )
    for value in values:
        histogram.labels("7").observe(float(value))
    ours = samples(metrics.registry, "churn_api_prediction_probability")
    theirs = {
        k: v
        for k, v in samples(reference, "churn_api_prediction_probability").items()
        if not k[0].endswith("_created")
    }
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        if key[0].endswith("_sum"):  # summed in another order: equal to rounding
            assert abs(ours[key] - value) < 1e-9
        else:
            assert ours[key] == value, key


def test_outcomes_are_counted_against_the_threshold() -> None:
    metrics = Metrics()
    metrics.observe_predictions("3", np.array([0.1, 0.3, 0.3, 0.9]), threshold=0.3)
    text = generate_latest(metrics.registry).decode()
    assert 'churn_api_predictions_total{model_version="3",outcome="churn"} 3.0' in text
    assert 'churn_api_predictions_total{model_version="3",outcome="no_churn"} 1.0' in text


def test_every_load_failure_reason_starts_at_zero() -> None:
    text = generate_latest(Metrics().registry).decode()
    for reason in ("not_found", "unreadable", "digest_mismatch", "contract_mismatch"):
        assert f'churn_api_model_load_failures_total{{reason="{reason}"}} 0.0' in text
    assert "churn_api_model_ready 0.0" in text
