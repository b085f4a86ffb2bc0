"""Metrics: the plain-number families render exactly as prometheus-client's own would."""

from __future__ import annotations

import numpy as np
from churn_api.metrics import DURATION_BUCKETS, PROBABILITY_BUCKETS, Metrics
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

HOT_FAMILIES = (
    "churn_api_requests_total",
    "churn_api_request_duration_seconds",
    "churn_api_predictions_total",
    "churn_api_prediction_probability",
)


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


def test_the_request_and_prediction_families_render_as_prometheus_clients_own() -> None:
    # Binary fractions and bucket bounds: every sum is exact in any order, so the text must be
    # byte for byte what prometheus-client's Counter and Histogram write for the same events.
    requests = [
        ("/v1/predict", "POST", 200, 0.001),
        ("/v1/predict", "POST", 200, 0.0625),
        ("/healthz", "GET", 200, 0.0),
        ("/v1/predict", "POST", 422, 7.5),
        ("unmatched", "OTHER", 404, 2.5),
    ]
    predictions = [("7", 0.125, False), ("7", 0.75, True), ("8", 1.0, True), ("7", 0.5, True)]
    batch = np.array([0.0, 0.1, 0.25, 0.5, 0.9375])

    ours = Metrics()
    for route, method, status, seconds in requests:
        ours.observe_request(route, method, status, seconds)
    for version, probability, churn in predictions:
        ours.observe_prediction(version, probability, churn)
    ours.observe_predictions("9", batch, threshold=0.5)

    reference = CollectorRegistry()
    counted = Counter(
        "churn_api_requests",
        "HTTP requests by route template, method and status code.",
        ["route", "method", "status"],
        registry=reference,
    )
    timed = Histogram(
        "churn_api_request_duration_seconds",
        "Time from the request's arrival to the end of its response.",
        ["route", "method"],
        buckets=DURATION_BUCKETS,
        registry=reference,
    )
    outcomes = Counter(
        "churn_api_predictions",
        "Predictions by outcome and model version.",
        ["outcome", "model_version"],
        registry=reference,
    )
    probabilities = Histogram(
        "churn_api_prediction_probability",
        "Predicted churn probability.",
        ["model_version"],
        buckets=PROBABILITY_BUCKETS,
        registry=reference,
    )
    for route, method, status, seconds in requests:
        counted.labels(route, method, str(status)).inc()
        timed.labels(route, method).observe(seconds)
    for version, probability, churn in predictions:
        outcomes.labels("churn" if churn else "no_churn", version).inc()
        probabilities.labels(version).observe(probability)
    outcomes.labels("churn", "9").inc(2)
    outcomes.labels("no_churn", "9").inc(3)
    for probability in batch:
        probabilities.labels("9").observe(float(probability))

    def hot_lines(registry: CollectorRegistry) -> list[str]:
        text = generate_latest(registry).decode()
        return [line for line in text.splitlines() if any(f in line for f in HOT_FAMILIES)]

    assert hot_lines(ours.registry) == hot_lines(reference)
