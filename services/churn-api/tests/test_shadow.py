"""The shadow model: verified like the primary, scored by capture's flush, never in charge.

Against the real PostgreSQL store: the shadow scores exactly the captured
records, its probability, version and sha256 land in their rows, and its
comparison metrics match those rows. A shadow that is refused, fails or blocks
changes neither an answer nor its latency nor readiness.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import numpy as np
import psycopg
import pytest
from churn_api.app import create_app
from churn_api.capture import Capture, CaptureMetrics, CaptureSettings
from churn_api.model import Model, load_model
from churn_api.schemas import PredictRequest, PredictResponse
from churn_api.settings import Settings, SettingsError, load_settings
from churn_api.shadow import DELTA_BUCKETS, Shadow, ShadowMetrics, ShadowScores
from churn_store.prediction_store import CapturedPrediction, StoreError
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families
from service_testing import VALID_RECORD, make_settings, random_records, wait_for
from store_testing import postgres_database


@pytest.fixture(scope="module")
def tree_path(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A second, different model (a tree ensemble): the challenger."""
    from churn_api.fixture import build_fixture_model  # noqa: PLC0415 - slow import

    path = tmp_path_factory.mktemp("shadow") / "tree.onnx"
    return path, build_fixture_model(path, version="2", kind="tree")


@pytest.fixture(scope="module")
def tree(tree_path: tuple[Path, str]) -> Model:
    """The challenger as the service loads it: what its answers must equal."""
    path, sha = tree_path
    loaded, _ = load_model(path.as_uri(), sha, "2")
    return loaded


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database("shadow") as url:
        yield url


def _samples(text: str) -> dict[str, float]:
    return {
        sample.name
        + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _shadow_settings(
    model_path: Path, model_sha256: str, uri: str, sha256: str, version: str = "2"
) -> Settings:
    return make_settings(
        model_path,
        model_sha256,
        shadow_model_uri=uri,
        shadow_model_sha256=sha256,
        shadow_model_version=version,
    )


def _capturing(settings: Settings, model: Model, store_url: str) -> TestClient[Any]:
    capture = CaptureSettings(store_url=store_url, flush_seconds=0.05, batch_size=100)
    return TestClient(app=create_app(settings, model=model, capture=capture))


def _shadow_loaded(client: TestClient[Any]) -> None:
    wait_for(
        lambda: client.get("/v1/model").json()["shadow"]["reason"] != "loading",
        "the shadow's load to end",
    )


def _written(client: TestClient[Any], count: int) -> None:
    wait_for(
        lambda: _samples(client.get("/metrics").text)["churn_api_capture_written_total"] >= count,
        f"{count} captured rows",
    )


class Row(NamedTuple):
    prediction_id: str
    features: str
    probability: float
    churn: bool
    shadow_probability: float | None
    shadow_model_version: str | None
    shadow_model_sha256: str | None


def _rows(url: str) -> dict[str, Row]:
    # Straight from the table: the store's JoinedRow carries no shadow sha256.
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT prediction_id::text, features::text, probability, churn, shadow_probability,"
            " shadow_model_version, shadow_model_sha256 FROM predictions"
        ).fetchall()
    return {row[0]: Row(*row) for row in found}


def _records(n: int, seed: int) -> list[dict[str, Any]]:
    # The categories come back as numpy strings: plain text for the JSON body.
    return [msgspec.to_builtins(r, enc_hook=str) for r in random_records(n, seed)]


def test_captured_rows_carry_the_shadows_probability_and_the_metrics_match_them(
    model_path: Path,
    model_sha256: str,
    model: Model,
    tree: Model,
    tree_path: tuple[Path, str],
    pg_url: str,
) -> None:
    settings = _shadow_settings(model_path, model_sha256, tree_path[0].as_uri(), tree_path[1])
    singles, batch = _records(5, seed=1), _records(300, seed=2)
    with _capturing(settings, model, pg_url) as client:
        _shadow_loaded(client)
        answers = [client.post("/v1/predict", json=r).json() for r in singles]
        batch_answer = client.post("/v1/predict/batch", json={"records": batch}).json()
        answers += batch_answer["predictions"]
        _written(client, len(answers))
        metrics = _samples(client.get("/metrics").text)
        described = client.get("/v1/model").json()

    # The answers are the primary's alone.
    primary = model.probabilities([msgspec.convert(r, PredictRequest) for r in singles + batch])
    assert [a["probability"] for a in answers] == pytest.approx(primary.tolist(), abs=1e-12)
    assert {a["model_version"] for a in answers} == {"1"}
    assert not [k for k in metrics if k.startswith("churn_api_predictions") and "=2," in k]
    assert (described["shadow"]["version"], described["shadow"]["ready"]) == ("2", True)

    rows = _rows(pg_url)
    assert set(rows) == {a["prediction_id"] for a in answers}
    ordered = list(rows.values())
    features = [msgspec.convert(json.loads(r.features), PredictRequest) for r in ordered]
    expected = tree.probabilities(features)
    for row, shadow_p in zip(ordered, expected.tolist(), strict=True):
        assert row.shadow_probability is not None
        assert abs(row.shadow_probability - shadow_p) <= 1e-9
        assert (row.shadow_model_version, row.shadow_model_sha256) == ("2", tree_path[1])

    # The comparison metrics count exactly the rows written.
    shadow_p = np.array([r.shadow_probability for r in ordered], dtype=np.float64)
    deltas = np.abs(shadow_p - np.array([r.probability for r in ordered]))
    disagreements = sum(
        (p >= tree.threshold) != r.churn for p, r in zip(shadow_p, ordered, strict=True)
    )
    assert 0 < disagreements < len(rows)  # two different models over the whole contract
    assert metrics["churn_api_shadow_predictions_total"] == len(rows)
    assert metrics["churn_api_shadow_disagreements_total"] == disagreements
    assert metrics["churn_api_shadow_probability_delta_count"] == len(rows)
    assert metrics["churn_api_shadow_probability_delta_sum"] == pytest.approx(deltas.sum())
    for bound in DELTA_BUCKETS:
        le = "1.0" if bound == 1.0 else str(bound)
        assert metrics[f"churn_api_shadow_probability_delta_bucket{{le={le}}}"] == sum(
            deltas <= bound
        )
    assert metrics["churn_api_shadow_errors_total"] == 0.0


def test_a_refused_shadow_leaves_the_shadow_columns_null_and_the_service_ready(
    model_path: Path,
    model_sha256: str,
    model: Model,
    tree_path: tuple[Path, str],
    pg_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _shadow_settings(model_path, model_sha256, tree_path[0].as_uri(), "f" * 64)
    with (
        caplog.at_level(logging.WARNING, logger="churn_api"),
        _capturing(settings, model, pg_url) as client,
    ):
        _shadow_loaded(client)
        assert client.get("/readyz").status_code == 200
        one = client.post("/v1/predict", json=VALID_RECORD)
        assert one.status_code == 200
        assert one.json()["probability"] == pytest.approx(
            model.probability(msgspec.convert(VALID_RECORD, PredictRequest)), abs=1e-12
        )
        batch = client.post("/v1/predict/batch", json={"records": [VALID_RECORD] * 3})
        assert batch.status_code == 200
        _written(client, 4)
        assert client.get("/readyz").status_code == 200
        metrics = _samples(client.get("/metrics").text)
        shadow = client.get("/v1/model").json()["shadow"]
    rows = _rows(pg_url).values()
    assert len(rows) == 4
    assert {
        (r.shadow_probability, r.shadow_model_version, r.shadow_model_sha256) for r in rows
    } == {(None, None, None)}
    assert metrics["churn_api_shadow_load_failures_total{reason=digest_mismatch}"] == 1.0
    assert metrics["churn_api_shadow_ready"] == 0.0
    assert metrics["churn_api_shadow_predictions_total"] == 0.0
    assert metrics["churn_api_shadow_errors_total"] == 0.0
    assert shadow["ready"] is False
    assert shadow["reason"] == "digest_mismatch"
    refusals = [
        getattr(r, "fields", {}) for r in caplog.records if r.getMessage() == "shadow_refused"
    ]
    assert len(refusals) == 1
    assert refusals[0]["reason"] == "digest_mismatch"
    assert refusals[0]["shadow_version"] == "2"
    # The primary's refusal count is untouched: only the shadow was refused.
    assert metrics["churn_api_model_load_failures_total{reason=digest_mismatch}"] == 0.0


def test_a_shadow_that_fails_to_score_costs_only_its_own_columns(
    model_path: Path, model_sha256: str, model: Model, tree_path: tuple[Path, str], pg_url: str
) -> None:
    class Broken:
        threshold = 0.5

        def probabilities(self, records: Any) -> Any:
            raise RuntimeError("the shadow broke")

    settings = _shadow_settings(model_path, model_sha256, tree_path[0].as_uri(), tree_path[1])
    with _capturing(settings, model, pg_url) as client:
        _shadow_loaded(client)
        shadow = client.app.state.service.shadow
        shadow.model = Broken()
        assert client.post("/v1/predict", json=VALID_RECORD).status_code == 200
        response = client.post("/v1/predict/batch", json={"records": [VALID_RECORD] * 3})
        assert response.status_code == 200
        _written(client, 4)
        metrics = _samples(client.get("/metrics").text)
    rows = _rows(pg_url).values()
    assert len(rows) == 4  # the primary's rows, every one
    assert {r.shadow_probability for r in rows} == {None}
    assert {r.shadow_model_version for r in rows} == {None}
    assert metrics["churn_api_shadow_errors_total"] == 4.0
    assert metrics["churn_api_shadow_predictions_total"] == 0.0


class _Blocking:
    """The real challenger behind a gate: it enters, then waits for the test to open it."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.threshold = inner.threshold
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.left = threading.Event()
        self.threads: list[str] = []

    def probabilities(self, records: Sequence[Any]) -> Any:
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        # Bounded only so that a regression ends the run; the test opens the gate itself.
        self.gate.wait(timeout=120)
        self.left.set()
        return self.inner.probabilities(records)

    def probability(self, record: Any) -> float:
        return float(self.probabilities([record])[0])


def test_a_response_never_waits_for_the_shadow_which_runs_on_the_flush_thread(
    model_path: Path,
    model_sha256: str,
    model: Model,
    tree: Model,
    tree_path: tuple[Path, str],
    pg_url: str,
) -> None:
    settings = _shadow_settings(model_path, model_sha256, tree_path[0].as_uri(), tree_path[1])
    blocking = _Blocking(tree)
    with _capturing(settings, model, pg_url) as client:
        try:
            _shadow_loaded(client)
            client.app.state.service.shadow.model = blocking
            assert client.post("/v1/predict", json=VALID_RECORD).status_code == 200
            wait_for(blocking.entered.is_set, "the flush to reach the shadow")
            # The shadow is stuck: predictions and readiness answer all the same.
            assert client.post("/v1/predict", json=VALID_RECORD).status_code == 200
            batch = client.post("/v1/predict/batch", json={"records": [VALID_RECORD] * 3})
            assert batch.status_code == 200
            assert client.get("/readyz").status_code == 200
            assert not blocking.left.is_set()  # every answer above came while it was blocked
        finally:
            blocking.gate.set()
        _written(client, 5)
    assert {r.shadow_model_version for r in _rows(pg_url).values()} == {"2"}
    # One thread of capture's own scores the shadow: its comparison counters have one writer.
    assert blocking.threads
    assert {name.rsplit("_", 1)[0] for name in blocking.threads} == {"churn-capture-flush"}


def test_a_shadow_without_capture_loads_scores_nothing_and_says_why(
    model_path: Path,
    model_sha256: str,
    model: Model,
    tree_path: tuple[Path, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _shadow_settings(model_path, model_sha256, tree_path[0].as_uri(), tree_path[1])
    with (
        caplog.at_level(logging.INFO, logger="churn_api"),
        TestClient(app=create_app(settings, model=model)) as client,
    ):
        _shadow_loaded(client)
        assert client.get("/v1/model").json()["shadow"]["ready"] is True
        assert client.post("/v1/predict", json=VALID_RECORD).status_code == 200
        metrics = _samples(client.get("/metrics").text)
    assert metrics["churn_api_shadow_ready"] == 1.0
    assert metrics["churn_api_shadow_predictions_total"] == 0.0
    idle = [getattr(r, "fields", {}) for r in caplog.records if r.getMessage() == "shadow_idle"]
    assert len(idle) == 1
    assert idle[0]["reason"] == "capture is off"
    assert idle[0]["shadow_version"] == "2"


def test_shadow_idle_is_said_beside_capture_only_when_it_samples_nothing(
    model_path: Path,
    model_sha256: str,
    model: Model,
    tree_path: tuple[Path, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _shadow_settings(model_path, model_sha256, tree_path[0].as_uri(), tree_path[1])
    with caplog.at_level(logging.INFO, logger="churn_api"):
        create_app(
            settings, model=model, capture=CaptureSettings(store_url=f"sqlite:///{tmp_path}/x.db")
        )
        create_app(
            settings,
            model=model,
            capture=CaptureSettings(store_url=f"sqlite:///{tmp_path}/x.db", sample_rate=0.0),
        )
    idle = [getattr(r, "fields", {}) for r in caplog.records if r.getMessage() == "shadow_idle"]
    assert [i["reason"] for i in idle] == ["capture samples nothing (CHURN_CAPTURE_SAMPLE_RATE=0)"]


class _FlakyStore:
    """A store that refuses writes until told otherwise, and keeps what it accepts."""

    url_for_logs = "flaky"

    def __init__(self) -> None:
        self.up = False
        self.rows: list[CapturedPrediction] = []

    def migrate(self) -> int:
        return 2

    def write_predictions(self, rows: Sequence[CapturedPrediction]) -> None:
        if not self.up:
            raise StoreError("the store is down")
        self.rows += rows

    def close(self) -> None:
        pass


def test_the_comparison_counts_only_rows_the_store_accepted(
    model: Model, tree: Model, tree_path: tuple[Path, str]
) -> None:
    registry = CollectorRegistry()
    shadow = Shadow(tree_path[0].as_uri(), tree_path[1], "2", ShadowMetrics(registry))
    shadow.model = tree
    store = _FlakyStore()
    capture = Capture(
        CaptureSettings(store_url="sqlite:///unused.db"),
        CaptureMetrics(registry),
        store_factory=lambda _url: store,  # type: ignore[arg-type,return-value]
        shadow=shadow,
    )
    requests = [msgspec.convert(r, PredictRequest) for r in _records(20, seed=3)]
    probabilities = model.probabilities(requests).tolist()
    responses = [
        PredictResponse(
            prediction_id=str(uuid.uuid4()),
            customer_id="c",
            churn=p >= model.threshold,
            probability=p,
            model_version="1",
            timestamp=datetime.now(UTC),
        )
        for p in probabilities
    ]

    capture.predictions(model, responses[:8], requests[:8])
    asyncio.run(capture.stop())  # one flush: the store refuses it
    assert store.rows == []
    assert shadow.metrics.comparison.predictions == 0

    store.up = True
    capture.predictions(model, responses[8:], requests[8:])
    asyncio.run(capture.stop())
    assert len(store.rows) == 12
    assert shadow.metrics.comparison.predictions == 12
    expected = tree.probabilities(requests[8:]).tolist()
    assert [r.shadow_probability for r in store.rows] == pytest.approx(expected, abs=1e-12)


def test_the_delta_histogram_matches_a_reference_histogram() -> None:
    rng = np.random.default_rng(0)
    shadow = np.concatenate([rng.uniform(0, 1, 3000), np.array(DELTA_BUCKETS), [0.0, 1.0]])
    primary = np.concatenate([rng.uniform(0, 1, 3000), np.zeros(len(DELTA_BUCKETS)), [0.0, 0.0]])
    registry = CollectorRegistry()
    metrics = ShadowMetrics(registry)
    comparison = metrics.comparison
    half = len(shadow) // 2
    for part in (slice(0, half), slice(half, None)):  # two flushed batches
        scores = ShadowScores(shadow[part], shadow[part] >= 0.4)
        comparison.observe_batch(np.abs(scores.probabilities - primary[part]), scores.churn)

    reference = CollectorRegistry()
    histogram = Histogram(
        "churn_api_shadow_probability_delta", "reference", buckets=DELTA_BUCKETS, registry=reference
    )
    for delta in np.abs(shadow - primary):
        histogram.observe(float(delta))

    def samples(registry: CollectorRegistry) -> dict[str, float]:
        return {
            s.name + json.dumps(s.labels, sort_keys=True): s.value
            for family in registry.collect()
            for s in family.samples
            if s.name.startswith("churn_api_shadow_probability_delta")
            and not s.name.endswith("_created")
        }

    ours, theirs = samples(registry), samples(reference)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key
    assert comparison.predictions == len(shadow)
    assert comparison.disagreements == int(np.count_nonzero(shadow >= 0.4))


def test_the_shadow_pin_needs_all_three_fields(model_sha256: str) -> None:
    base = {"MODEL_URI": "file:///m.onnx", "MODEL_SHA256": model_sha256, "MODEL_VERSION": "1"}
    assert load_settings(base).shadow_model_uri is None
    # overlays/<env>/shadow.yaml pins none with three empty values.
    empty = {"SHADOW_MODEL_URI": "", "SHADOW_MODEL_SHA256": "", "SHADOW_MODEL_VERSION": ""}
    assert load_settings({**base, **empty}).shadow_model_uri is None
    with pytest.raises(SettingsError, match="missing SHADOW_MODEL_SHA256, SHADOW_MODEL_VERSION"):
        load_settings({**base, "SHADOW_MODEL_URI": "file:///s.onnx"})
    with pytest.raises(SettingsError, match="SHADOW_MODEL_SHA256='abc'"):
        load_settings(
            {
                **base,
                "SHADOW_MODEL_URI": "file:///s.onnx",
                "SHADOW_MODEL_SHA256": "abc",
                "SHADOW_MODEL_VERSION": "2",
            }
        )
    digest = hashlib.sha256(b"x").hexdigest()
    full = load_settings(
        {
            **base,
            "SHADOW_MODEL_URI": "file:///s.onnx",
            "SHADOW_MODEL_SHA256": digest,
            "SHADOW_MODEL_VERSION": "2",
        }
    )
    assert (full.shadow_model_uri, full.shadow_model_sha256, full.shadow_model_version) == (
        "file:///s.onnx",
        digest,
        "2",
    )
