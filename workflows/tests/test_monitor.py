"""churn-monitor's step against the real PostgreSQL (and SQLite): live quality, drift, retrain.

Captured predictions are written straight into the store as the service writes
them; the "model" is the synthetic data's own logit, so its live quality is
known: good on labels drawn from it, chance level on shuffled labels.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from churn_store.prediction_store import CapturedPrediction, Outcome, StoreError, open_store
from churn_workflows.champion_challenger import SHADOW_PREFIX, latest_champion_challenger
from churn_workflows.loop import FEATURES
from churn_workflows.steps import monitor as monitor_step
from churn_workflows.steps.evaluate import paired_auc_delta
from churn_workflows.steps.ingest import read_dataset
from churn_workflows.steps.monitor import MonitorConfig, run_monitor, summary_lines
from churn_workflows.steps.profile import (
    profile_bytes,
    profile_uri,
    publish_profile,
    read_profile,
    training_profile,
)
from churn_workflows.steps.synthetic import generate
from churn_workflows.steps.validate import validate
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "libs" / "churn-store" / "tests"))
from store_testing import STORE_BACKENDS, store_database

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SHA = "b" * 64


def score(frame: pd.DataFrame) -> np.ndarray:
    """A stand-in model: a logistic score close to the data's own."""
    logit = (
        -1.2
        + 1.3 * (frame["contract_type"] == "month-to-month")
        - 0.035 * frame["tenure"]
        + 0.35 * frame["support_tickets"]
        + 0.5 * (frame["internet_service"] == "fiber-optic")
    )
    return 1.0 / (1.0 + np.exp(-logit.to_numpy(dtype=float)))


@pytest.fixture(params=STORE_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_database(request.param, "monitor", tmp_path) as url:
        yield url


@pytest.fixture
def buckets(tmp_path: Path) -> tuple[str, str]:
    """(models, data) as file:// buckets, the models one holding version 1's profile."""
    models, data = tmp_path / "models", tmp_path / "data"
    models.mkdir()
    data.mkdir()
    training = generate(4000, seed=11)
    publish_profile(training_profile(training, score(training)), models.as_uri(), SHA)
    return models.as_uri(), data.as_uri()


def capture(
    url: str,
    frame: pd.DataFrame,
    *,
    labels: np.ndarray | None,
    days_ago: int = 1,
    shadow: np.ndarray | None = None,
    shadow_version: str = "2",
) -> None:
    """Write ``frame`` as captured predictions of version 1, with outcomes when ``labels``,
    and the shadow model ``shadow_version``'s probabilities when ``shadow``."""
    probabilities = score(frame)
    shadows = [None] * len(frame) if shadow is None else [float(p) for p in shadow]
    at = NOW - timedelta(days=days_ago, hours=1)
    rows = [
        CapturedPrediction(
            prediction_id=str(uuid.uuid4()),
            predicted_at=at + timedelta(seconds=i),
            model_version="1",
            model_sha256=SHA,
            customer_id=None,
            features=json.dumps({k: _plain(v) for k, v in record.items()}),
            probability=float(p),
            churn=bool(p >= 0.5),
            threshold=0.5,
            shadow_probability=s,
            shadow_model_version=None if s is None else shadow_version,
            shadow_model_sha256=None if s is None else "c" * 64,
        )
        for i, (record, p, s) in enumerate(
            zip(frame[list(FEATURES)].to_dict("records"), probabilities, shadows, strict=True)
        )
    ]
    store = open_store(url)
    store.migrate()
    store.write_predictions(rows)
    if labels is not None:
        outcomes = [
            Outcome(r.prediction_id, None, bool(y), NOW) for r, y in zip(rows, labels, strict=True)
        ]
        store.record_outcomes(outcomes, "test")
    store.close()


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def config(url: str, buckets: tuple[str, str], **overrides: object) -> MonitorConfig:
    return MonitorConfig(url, buckets[0], buckets[1], **overrides)  # type: ignore[arg-type]


def test_traffic_like_training_reports_quality_and_asks_for_nothing(
    store_url: str, buckets: tuple[str, str]
) -> None:
    live = generate(1500, seed=12)
    capture(store_url, live, labels=live["churn"].to_numpy())
    capture(store_url, generate(500, seed=13), labels=None, days_ago=0)

    report = run_monitor(config(store_url, buckets), now=NOW)

    window = report.window["1"]
    assert window["predictions"] == 2000
    assert window["labelled"] == 1500
    assert window["label_coverage"] == pytest.approx(0.75)
    assert window["roc_auc"] is not None
    assert window["roc_auc"] > 0.75
    assert window["pr_auc"] is not None
    assert window["brier"] is not None
    assert window["max_feature_psi"] is not None
    assert window["max_feature_psi"] < 0.1
    assert not report.retrain, report.reasons
    assert summary_lines(report)[-1] == "no retrain"

    store = open_store(store_url)
    latest = {(r.metric, r.feature): r.value for r in store.latest_monitor_results()}
    store.close()
    assert latest[("window.roc_auc", "")] == pytest.approx(window["roc_auc"])
    assert latest[("labelled", "")] == 0  # today's own predictions have no outcomes yet


def noisy(frame: pd.DataFrame, noise: float, seed: int) -> np.ndarray:
    """Another stand-in model: ``score`` with noise on its logit, so a weaker ranking."""
    p = score(frame)
    logit = np.log(p / (1 - p)) + np.random.default_rng(seed).normal(0, noise, len(p))
    return 1.0 / (1.0 + np.exp(-logit))


def test_champion_and_challenger_are_compared_on_the_same_labelled_traffic(
    store_url: str, buckets: tuple[str, str]
) -> None:
    older, newer = generate(700, seed=21), generate(800, seed=22)
    capture(store_url, older, labels=older["churn"].to_numpy(), days_ago=2,
            shadow=noisy(older, 1.5, 1))  # fmt: skip
    capture(store_url, newer, labels=newer["churn"].to_numpy(), shadow=noisy(newer, 1.5, 2))
    # Neither counts: a shadow's prediction without an outcome, an outcome without a shadow.
    unlabelled = generate(300, seed=23)
    capture(store_url, unlabelled, labels=None, shadow=noisy(unlabelled, 1.5, 3))
    unshadowed = generate(200, seed=24)
    capture(store_url, unshadowed, labels=unshadowed["churn"].to_numpy())

    report = run_monitor(config(store_url, buckets), now=NOW)

    (pair,) = report.champion_challenger
    both = pd.concat([older, newer])
    truth = both["churn"].to_numpy()
    p_serving, p_shadow = score(both), np.concatenate([noisy(older, 1.5, 1), noisy(newer, 1.5, 2)])
    assert (pair.serving_version, pair.shadow_version, pair.labelled) == ("1", "2", 1500)
    assert (pair.first_day, pair.last_day, pair.days) == (
        (NOW - timedelta(days=2)).date(),
        (NOW - timedelta(days=1)).date(),
        2,
    )
    assert pair.serving["roc_auc"] == pytest.approx(roc_auc_score(truth, p_serving))
    assert pair.shadow["roc_auc"] == pytest.approx(roc_auc_score(truth, p_shadow))
    assert pair.shadow["pr_auc"] == pytest.approx(average_precision_score(truth, p_shadow))
    assert pair.serving["brier"] == pytest.approx(brier_score_loss(truth, p_serving))
    # The gate's own paired DeLong interval, the challenger's gain over the champion.
    expected = paired_auc_delta(truth, p_shadow, p_serving)
    assert pair.gain is not None
    assert pair.gain == pytest.approx({k: expected[k] for k in ("delta", "low", "high")})
    assert pair.gain["high"] < 0  # the noisier shadow ranks worse, and the interval says so
    assert (
        "shadow version 2 beside version 1: 1500 labelled over 2 day(s) "
        f"{pair.first_day}..{pair.last_day}; ROC AUC" in "\n".join(summary_lines(report))
    )

    # Stored under the serving version with the shadow version as the qualifier, read back whole.
    store = open_store(store_url)
    rows = [r for r in store.latest_monitor_results() if r.metric.startswith(SHADOW_PREFIX)]
    store.close()
    assert {(r.day, r.model_version, r.feature) for r in rows} == {(NOW.date(), "1", "2")}
    # churn-api's gauges take only window.* rows without a feature: these stay out of the service.
    assert not any(r.metric.startswith("window.") for r in rows)
    assert latest_champion_challenger(store_url, "2", serving_version="1") == pair
    assert latest_champion_challenger(store_url, "3") is None


def test_a_shadow_with_one_class_of_outcomes_gets_no_interval(
    store_url: str, buckets: tuple[str, str]
) -> None:
    live = generate(40, seed=25)
    retained = np.zeros(len(live), dtype=bool)
    capture(store_url, live, labels=retained, shadow=noisy(live, 1.0, 4))

    (pair,) = run_monitor(config(store_url, buckets), now=NOW).champion_challenger

    assert pair.gain is None
    assert pair.serving["roc_auc"] is None
    assert pair.shadow["brier"] is not None
    assert latest_champion_challenger(store_url, "2") == pair


def test_an_unreadable_store_is_a_store_error() -> None:
    with pytest.raises(StoreError):
        latest_champion_challenger("postgresql://x@127.0.0.1:1/none", "2")


def test_a_shifted_population_triggers_a_retrain_on_a_trainable_snapshot(
    store_url: str, buckets: tuple[str, str]
) -> None:
    shifted = generate(1500, seed=14, drift={"tenure": 1.5, "contract_type": 0.5})
    capture(store_url, shifted, labels=shifted["churn"].to_numpy())

    report = run_monitor(config(store_url, buckets), now=NOW)

    assert report.retrain
    assert any("feature PSI" in r and "tenure" in r for r in report.reasons), report.reasons
    assert report.feature_psi["1"]["tenure"] > 0.2
    snapshot = read_dataset(report.snapshot_uri)
    assert snapshot.sha256 == report.snapshot_sha256
    assert report.snapshot_uri.endswith(f"/snapshots/captures-{report.snapshot_sha256}.parquet")
    assert report.snapshot_rows == len(snapshot.frame) == 1500
    # The snapshot is training data: the contract's checks pass on it.
    checked = validate(snapshot.frame, source=report.snapshot_uri)
    assert checked.passed, checked.violations
    # Same captures, same bytes: a second run names the same snapshot.
    assert run_monitor(config(store_url, buckets), now=NOW).snapshot_uri == report.snapshot_uri
    # Drift with too few labels to train on is reported, and nothing is submitted.
    starved = run_monitor(config(store_url, buckets, min_labels=5000), now=NOW)
    assert not starved.retrain
    assert "no retrain: only 1500 labelled captures to train on" in starved.reasons


def test_live_quality_below_the_floor_with_enough_labels_triggers_a_retrain(
    store_url: str, buckets: tuple[str, str]
) -> None:
    live = generate(1000, seed=15)
    shuffled = np.random.default_rng(0).permutation(live["churn"].to_numpy())
    capture(store_url, live, labels=shuffled)

    report = run_monitor(config(store_url, buckets, min_labels=500), now=NOW)

    assert report.retrain
    assert any("live ROC AUC" in r for r in report.reasons), report.reasons
    few = run_monitor(config(store_url, buckets, min_labels=5000), now=NOW)
    assert not few.retrain
    assert few.reasons == []  # too few labels for the live AUC to decide anything


def test_a_model_without_a_profile_still_gets_its_quality(store_url: str, tmp_path: Path) -> None:
    live = generate(300, seed=16)
    capture(store_url, live, labels=live["churn"].to_numpy())
    empty = (tmp_path / "nothing").as_uri()
    report = run_monitor(MonitorConfig(store_url, empty, empty), now=NOW)
    assert report.window["1"]["roc_auc"] is not None
    assert report.window["1"]["max_feature_psi"] is None


def test_the_profile_is_canonical_and_lives_beside_the_artifact(tmp_path: Path) -> None:
    frame = generate(2000, seed=3)
    first = profile_bytes(training_profile(frame, score(frame)))
    assert first == profile_bytes(training_profile(frame, score(frame)))
    bucket = tmp_path.as_uri()
    uri = publish_profile(training_profile(frame, score(frame)), bucket, SHA)
    assert uri == profile_uri(bucket, SHA)
    assert uri.endswith(f"churn-model/sha256/{SHA}.profile.json")
    assert hashlib.sha256((tmp_path / f"churn-model/sha256/{SHA}.profile.json").read_bytes())
    assert read_profile(bucket, SHA) == json.loads(first)
    assert read_profile(bucket, "c" * 64) is None


def test_the_step_command_writes_the_decision_and_retries_an_unreachable_store(
    store_url: str, buckets: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shifted = generate(400, seed=17, drift={"tenure": 2.0})
    capture(store_url, shifted, labels=shifted["churn"].to_numpy(), days_ago=0)
    out = tmp_path / "out"
    argv = ["--store-url", store_url, "--models", buckets[0], "--data", buckets[1]]
    assert monitor_step.main([*argv, "--min-labels", "100", "--output", str(out)]) == 0
    assert (out / "retrain").read_text() == "true"
    assert "tenure" in (out / "reason").read_text()
    assert (out / "snapshot").read_text().startswith(buckets[1])
    assert "version 1:" in capsys.readouterr().out

    down = ["--store-url", "postgresql://x@127.0.0.1:1/none", "--models", buckets[0]]
    assert monitor_step.main([*down, "--data", buckets[1], "--output", str(out)]) == 75
