"""Capture: every answer has a prediction_id; a sample reaches the store off the request path.

Against the real PostgreSQL (and SQLite for the embedded default), including an
outage: the link to the database is cut while predictions keep flowing, then
restored, and capture resumes by itself.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from churn_api.app import create_app
from churn_api.capture import CaptureSettings, load_capture_settings
from churn_api.model import Model
from churn_api.settings import Settings, SettingsError
from churn_store.outcomes import hash_customer_id
from churn_store.prediction_store import open_store
from litestar.testing import TestClient
from service_testing import VALID_RECORD
from store_testing import TcpLink, postgres_database, with_host


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def captured(url: str) -> list[Any]:
    store = open_store(url)
    try:
        store.migrate()
        far = datetime(2000, 1, 1, tzinfo=UTC)
        return list(store.joined(far, datetime.now(UTC) + timedelta(days=1)))
    finally:
        store.close()


def metric(client: TestClient[Any], name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exposed")


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database("capture") as url:
        yield url


def capture_client(settings: Settings, model: Model, **values: Any) -> TestClient[Any]:
    values = {"flush_seconds": 0.05, "batch_size": 100, **values}
    return TestClient(app=create_app(settings, model=model, capture=CaptureSettings(**values)))


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_single_and_batch_predictions_are_captured_with_their_ids(
    backend: str, settings: Settings, model: Model, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        request.getfixturevalue("pg_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'p.db'}"
    )
    with capture_client(settings, model, store_url=url) as client:
        one = client.post("/v1/predict", json={**VALID_RECORD, "customer_id": "c-1"}).json()
        batch = client.post(
            "/v1/predict/batch", json={"records": [VALID_RECORD, {**VALID_RECORD, "tenure": 40}]}
        ).json()["predictions"]
        answered = {one["prediction_id"]: one, **{p["prediction_id"]: p for p in batch}}
        assert len(answered) == 3  # every answer names its own prediction
        # Wait on the service's own count: polling the table would take SQLite's write lock
        # (the reader migrates) and make the writer wait behind the test.
        wait_for(lambda: metric(client, "churn_api_capture_written_total") >= 3, "3 writes")
    rows = captured(url)
    by_id = {r.prediction_id: r for r in rows}
    assert set(by_id) == set(answered)
    row = by_id[one["prediction_id"]]
    assert row.probability == pytest.approx(one["probability"])
    assert row.churn is one["churn"]
    assert row.model_version == "1"
    assert row.model_sha256 == model.sha256
    assert row.threshold == model.threshold
    # No shadow pinned: its columns stay empty.
    assert (row.shadow_probability, row.shadow_model_version) == (None, None)
    assert json.loads(row.features) == VALID_RECORD  # the features, without the customer id
    assert json.loads(by_id[batch[1]["prediction_id"]].features)["tenure"] == 40


def test_customer_ids_are_stored_hashed_when_a_key_is_set(
    settings: Settings, model: Model, pg_url: str
) -> None:
    with capture_client(settings, model, store_url=pg_url, customer_id_key=b"k") as client:
        client.post("/v1/predict", json={**VALID_RECORD, "customer_id": "alice"})
        wait_for(lambda: captured(pg_url), "a captured row")
    with psycopg.connect(pg_url) as conn:
        stored = conn.execute("SELECT customer_id FROM predictions").fetchall()
    assert stored == [(hash_customer_id("alice", b"k"),)]
    assert stored[0][0] != "alice"


def test_the_sample_rate_decides_how_many_are_captured(
    settings: Settings, model: Model, pg_url: str
) -> None:
    records = [VALID_RECORD] * 2000
    with capture_client(settings, model, store_url=pg_url, sample_rate=0.25) as client:
        client.post("/v1/predict/batch", json={"records": records})
        wait_for(lambda: metric(client, "churn_api_capture_written_total") > 0, "a write")
        wait_for(lambda: metric(client, "churn_api_capture_queue_depth") == 0, "an empty queue")
    count = len(captured(pg_url))
    assert 400 < count < 600  # 2000 x 0.25, far outside binomial noise (sd ~19)

    with capture_client(settings, model, store_url=pg_url, sample_rate=0.0) as client:
        assert client.post("/v1/predict", json=VALID_RECORD).status_code == 200
    assert len(captured(pg_url)) == count


def test_capture_writes_again_after_a_lifespan_restart_on_another_loop(
    settings: Settings, model: Model, tmp_path: Path
) -> None:
    # Each TestClient runs the app's lifespan on an event loop of its own. The flush task once
    # waited on an Event bound to the first loop and died at once on the second.
    url = f"sqlite:///{tmp_path / 'p.db'}"
    capture = CaptureSettings(store_url=url, flush_seconds=0.05, batch_size=1)
    app = create_app(settings, model=model, capture=capture)
    for written in (1, 2):
        with TestClient(app=app) as client:
            assert client.post("/v1/predict", json=VALID_RECORD).status_code == 200
            wait_for(
                lambda: metric(client, "churn_api_capture_written_total") >= written,  # noqa: B023
                f"write {written}",
                timeout=30,
            )
    assert len(captured(url)) == 2


def test_capture_off_answers_the_same_with_a_prediction_id(client: TestClient[Any]) -> None:
    body = client.post("/v1/predict", json=VALID_RECORD).json()
    assert len(body["prediction_id"]) == 36
    assert "churn_api_capture_written_total" not in client.get("/metrics").text


def test_a_full_queue_drops_and_counts_instead_of_growing(
    settings: Settings, model: Model, pg_url: str
) -> None:
    with capture_client(
        settings, model, store_url=pg_url, queue_size=10, batch_size=1000, flush_seconds=60
    ) as client:
        response = client.post("/v1/predict/batch", json={"records": [VALID_RECORD] * 25})
        assert response.status_code == 200
        assert metric(client, 'churn_api_capture_dropped_total{reason="queue_full"}') == 15
    assert len(captured(pg_url)) == 10  # the queued ten are flushed on shutdown


def test_a_store_outage_drops_records_but_never_a_prediction_and_capture_resumes(
    settings: Settings, model: Model, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    target = urlsplit(pg_url)
    link = TcpLink(target.hostname or "127.0.0.1", target.port or 5432)
    via_link = with_host(pg_url, port=link.port)
    try:
        with capture_client(settings, model, store_url=via_link, flush_seconds=0.05) as client:
            assert client.post("/v1/predict", json=VALID_RECORD).status_code == 200
            wait_for(lambda: metric(client, "churn_api_capture_written_total") == 1, "capture")

            link.cut()
            with caplog.at_level(logging.WARNING, logger="churn_api.capture"):
                for _ in range(20):
                    response = client.post("/v1/predict", json=VALID_RECORD)
                    assert response.status_code == 200
                    time.sleep(0.01)
                wait_for(
                    lambda: (
                        metric(client, 'churn_api_capture_dropped_total{reason="store_error"}') > 0
                    ),
                    "a counted drop",
                )
                assert metric(client, "churn_api_capture_store_up") == 0
                wait_for(
                    lambda: any(r.message == "capture_dropped" for r in caplog.records),
                    "one log line about the drops",
                )

            link.restore()
            after = client.post("/v1/predict", json=VALID_RECORD).json()["prediction_id"]
            wait_for(
                lambda: after in {r.prediction_id for r in captured(pg_url)},
                "capture to resume once the store is back",
            )
            assert metric(client, "churn_api_capture_store_up") == 1
    finally:
        link.close()
    # Before, the one after, and whatever was queued between the cut and a failed flush: never all.
    assert 2 <= len(captured(pg_url)) < 22


def test_capture_settings_name_every_wrong_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        load_capture_settings(
            {
                "CHURN_CAPTURE_URL": "mysql://x",
                "CHURN_CAPTURE_SAMPLE_RATE": "1.5",
                "CHURN_CAPTURE_BATCH_SIZE": "ten",
                "CHURN_CAPTURE_RETENTION_DAYS": "2.5",
            }
        )
    message = str(caught.value)
    for name in ("CHURN_CAPTURE_URL", "SAMPLE_RATE", "BATCH_SIZE", "RETENTION_DAYS"):
        assert name in message
    assert load_capture_settings({}).store_url is None
    loaded = load_capture_settings(
        {"CHURN_CAPTURE_URL": "sqlite:///x.db", "CHURN_CAPTURE_SAMPLE_RATE": "0.1"}
    )
    assert (loaded.store_url, loaded.sample_rate, loaded.batch_size) == ("sqlite:///x.db", 0.1, 500)


def test_capture_url_from_a_mounted_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "url"
    secret.write_text("postgresql://u:p@db.internal:5432/predictions?sslmode=require\n")
    loaded = load_capture_settings({"CHURN_CAPTURE_URL_FILE": str(secret)})
    assert loaded.store_url == "postgresql://u:p@db.internal:5432/predictions?sslmode=require"
    # The variable wins over the file.
    both = {"CHURN_CAPTURE_URL": "sqlite:///x.db", "CHURN_CAPTURE_URL_FILE": str(secret)}
    assert load_capture_settings(both).store_url == "sqlite:///x.db"
    # The optional Secret not mounted (yet): capture off, the service still starts.
    absent = {"CHURN_CAPTURE_URL_FILE": str(tmp_path / "missing" / "url")}
    assert load_capture_settings(absent).store_url is None
    # A wrong URL or an unreadable file is named, never a crash later.
    secret.write_text("mysql://x")
    with pytest.raises(SettingsError, match="CHURN_CAPTURE_URL: must start"):
        load_capture_settings({"CHURN_CAPTURE_URL_FILE": str(secret)})
    with pytest.raises(SettingsError, match=r"CHURN_CAPTURE_URL_FILE=.*cannot read"):
        load_capture_settings({"CHURN_CAPTURE_URL_FILE": str(tmp_path)})
