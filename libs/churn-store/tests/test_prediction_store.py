"""The prediction store on the real PostgreSQL and on SQLite: migrations, writes, outcomes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from churn_store import prediction_store
from churn_store.prediction_store import (
    MIGRATIONS,
    CapturedPrediction,
    MonitorResult,
    Outcome,
    PredictionStore,
    StoreError,
    open_store,
)
from store_testing import STORE_BACKENDS, postgres_database, store_database

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(params=STORE_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_database(request.param, "store", tmp_path / "store") as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[PredictionStore]:
    opened = open_store(store_url)
    opened.migrate()
    yield opened
    opened.close()


def prediction(
    at: datetime, *, customer: str | None = "c1", p: float = 0.8, version: str = "1"
) -> CapturedPrediction:
    return CapturedPrediction(
        prediction_id=str(uuid.uuid4()),
        predicted_at=at,
        model_version=version,
        model_sha256="a" * 64,
        customer_id=customer,
        features='{"tenure": 3}',
        probability=p,
        churn=p >= 0.5,
        threshold=0.5,
    )


def test_migrations_are_versioned_and_idempotent(store: PredictionStore) -> None:
    assert store.migrate() == MIGRATIONS[-1][0]
    assert store.migrate() == MIGRATIONS[-1][0]


def test_concurrent_starts_migrate_once_under_the_lock() -> None:
    with postgres_database("migrate") as url:
        versions: list[int] = []
        errors: list[BaseException] = []

        def start() -> None:
            store = open_store(url)
            try:
                versions.append(store.migrate())
            except BaseException as exc:
                errors.append(exc)
            finally:
                store.close()

        threads = [threading.Thread(target=start) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert versions == [MIGRATIONS[-1][0]] * 4
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
        assert rows == [(version,) for version, *_ in MIGRATIONS]


def test_concurrent_starts_on_sqlite_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    errors: list[BaseException] = []

    def start() -> None:
        store = open_store(url)
        try:
            store.migrate()
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_written_predictions_come_back_joined_with_their_outcomes(store: PredictionStore) -> None:
    first, second = prediction(NOW - timedelta(days=1)), prediction(NOW, customer=None, p=0.2)
    store.write_predictions([first, second])
    results = store.record_outcomes(
        [Outcome(first.prediction_id, None, True, NOW + timedelta(days=30))], "test"
    )
    assert results == [("recorded", first.prediction_id)]

    rows = list(store.joined(NOW - timedelta(days=2), NOW + timedelta(seconds=1)))
    assert [r.prediction_id for r in rows] == [first.prediction_id, second.prediction_id]
    assert rows[0].churned is True
    assert rows[1].churned is None
    assert rows[0].predicted_at == first.predicted_at
    assert (rows[1].probability, rows[1].churn, rows[1].model_sha256) == (0.2, False, "a" * 64)


def test_the_shadow_models_probability_and_identity_come_back_beside_the_primary(
    store: PredictionStore,
) -> None:
    shadowed = prediction(NOW)._replace(
        shadow_probability=0.625, shadow_model_version="7", shadow_model_sha256="b" * 64
    )
    alone = prediction(NOW + timedelta(seconds=1))
    store.write_predictions([shadowed, alone])

    rows = list(store.joined(NOW, NOW + timedelta(seconds=2)))
    assert [(r.shadow_probability, r.shadow_model_version) for r in rows] == [
        (0.625, "7"),
        (None, None),
    ]


def test_a_store_made_before_the_shadow_columns_is_upgraded_in_place(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prediction_store, "MIGRATIONS", MIGRATIONS[:1])
    old = open_store(store_url)
    assert old.migrate() == 1
    old.close()
    monkeypatch.undo()

    upgraded = open_store(store_url)
    try:
        assert upgraded.migrate() == MIGRATIONS[-1][0]
        upgraded.write_predictions([prediction(NOW)._replace(shadow_probability=0.5)])
        (row,) = upgraded.joined(NOW, NOW + timedelta(seconds=1))
        assert row.shadow_probability == 0.5
    finally:
        upgraded.close()


def test_text_with_tabs_newlines_and_backslashes_survives_the_copy(store: PredictionStore) -> None:
    awkward = "a\tb\\c\nd\re"
    row = prediction(NOW)._replace(
        customer_id=awkward, model_version=awkward, features='{"x": "q\\"\\\\"}'
    )
    store.write_predictions([row])
    (back,) = store.joined(NOW, NOW + timedelta(seconds=1))
    assert back.model_version == awkward
    assert back.features.replace(" ", "") == row.features.replace(" ", "")
    assert store.record_outcomes([Outcome(None, awkward, True, NOW)], "api") == [
        ("recorded", row.prediction_id)
    ]


def test_an_outcome_is_stored_once_and_a_contradiction_is_named(store: PredictionStore) -> None:
    row = prediction(NOW)
    store.write_predictions([row])
    outcome = Outcome(row.prediction_id, None, True, NOW + timedelta(days=1))
    assert store.record_outcomes([outcome], "api") == [("recorded", row.prediction_id)]
    assert store.record_outcomes([outcome], "api") == [("duplicate", row.prediction_id)]
    contradiction = Outcome(row.prediction_id, None, False, NOW + timedelta(days=1))
    assert store.record_outcomes([contradiction], "api") == [("conflict", row.prediction_id)]
    unknown = str(uuid.uuid4())
    assert store.record_outcomes([Outcome(unknown, None, True, NOW)], "api") == [
        ("unknown_prediction", unknown)
    ]
    labelled = [r for r in store.joined(NOW, NOW + timedelta(days=1)) if r.churned is not None]
    assert len(labelled) == 1
    assert labelled[0].churned is True


def test_a_customer_outcome_names_their_latest_prediction_before_it(
    store: PredictionStore,
) -> None:
    old, latest, after = (
        prediction(NOW - timedelta(days=10), customer="c9"),
        prediction(NOW - timedelta(days=2), customer="c9"),
        prediction(NOW + timedelta(days=5), customer="c9"),
    )
    store.write_predictions([old, latest, after])
    results = store.record_outcomes([Outcome(None, "c9", True, NOW)], "api")
    assert results == [("recorded", latest.prediction_id)]
    assert store.record_outcomes([Outcome(None, "nobody", True, NOW)], "api") == [
        ("unknown_prediction", None)
    ]


def test_retention_forgets_old_predictions_and_their_outcomes(store: PredictionStore) -> None:
    old, recent = prediction(NOW - timedelta(days=40)), prediction(NOW - timedelta(days=1))
    store.write_predictions([old, recent])
    store.record_outcomes([Outcome(old.prediction_id, None, True, NOW)], "api")
    assert store.drop_expired(30, NOW) >= 1
    rows = list(store.joined(NOW - timedelta(days=100), NOW))
    assert [r.prediction_id for r in rows] == [recent.prediction_id]


def test_retention_on_postgresql_drops_whole_day_partitions() -> None:
    with postgres_database("retention") as url:
        store = open_store(url)
        store.migrate()
        store.write_predictions([prediction(NOW - timedelta(days=d)) for d in (0, 1, 40, 41)])
        with psycopg.connect(url) as conn:

            def partitions() -> list[str]:
                rows = conn.execute(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = 'predictions'::regclass ORDER BY 1"
                ).fetchall()
                return [r[0] for r in rows]

            assert partitions() == [
                "predictions_p20261020",
                "predictions_p20261021",
                "predictions_p20261129",
                "predictions_p20261130",
            ]
            assert store.drop_expired(30, NOW) == 2
            assert partitions() == ["predictions_p20261129", "predictions_p20261130"]
        # Writing again after a drop recreates what is missing.
        store.write_predictions([prediction(NOW - timedelta(days=41))])
        store.close()


def test_monitor_results_keep_the_latest_value_per_day(store: PredictionStore) -> None:
    day = date(2026, 11, 29)
    store.write_monitor_results([MonitorResult(day, "1", "roc_auc", 0.7)])
    store.write_monitor_results(
        [
            MonitorResult(day, "1", "roc_auc", 0.8),
            MonitorResult(day - timedelta(days=1), "1", "roc_auc", 0.6),
            MonitorResult(day, "1", "psi", 0.3, feature="tenure"),
            MonitorResult(day, "2", "roc_auc", None),
        ]
    )
    latest = sorted(store.latest_monitor_results(), key=lambda r: (r.model_version, r.metric))
    assert latest == [
        MonitorResult(day, "1", "psi", 0.3, feature="tenure"),
        MonitorResult(day, "1", "roc_auc", 0.8),
        MonitorResult(day, "2", "roc_auc", None),
    ]


def test_an_unreachable_store_raises_a_store_error_without_the_password() -> None:
    store = open_store("postgresql://churn:s3cret@127.0.0.1:1/predictions")
    with pytest.raises(StoreError) as caught:
        store.migrate()
    assert "s3cret" not in str(caught.value)
    assert "churn:***@127.0.0.1:1" in str(caught.value)


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(StoreError, match="postgresql:// or sqlite:///"):
        open_store("mysql://db/predictions")
