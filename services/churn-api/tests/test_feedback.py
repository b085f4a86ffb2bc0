"""POST /v1/feedback against the real PostgreSQL: per-record results, idempotence, strict input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from churn_api.app import create_app
from churn_api.capture import CaptureSettings
from churn_api.feedback import MAX_RECORDS
from churn_api.model import Model
from churn_api.settings import Settings
from litestar.testing import TestClient
from service_testing import VALID_RECORD
from store_testing import postgres_database
from test_capture import captured, wait_for

LATER = "later"  # replaced by a moment just after the test's predictions


def later() -> str:
    return (datetime.now(UTC) + timedelta(seconds=1)).isoformat()


def timed(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "observed_at": later()} if record.get("observed_at") == LATER else record


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database("feedback") as url:
        yield url


@pytest.fixture
def loop_client(settings: Settings, model: Model, pg_url: str) -> Iterator[TestClient[Any]]:
    capture = CaptureSettings(store_url=pg_url, flush_seconds=0.05, customer_id_key=b"key")
    with TestClient(app=create_app(settings, model=model, capture=capture)) as client:
        yield client


def predict(client: TestClient[Any], count: int, customer: str | None = None) -> list[str]:
    records = [{**VALID_RECORD, **({"customer_id": customer} if customer else {})}] * count
    answers = client.post("/v1/predict/batch", json={"records": records}).json()["predictions"]
    ids = [a["prediction_id"] for a in answers]
    return ids


def settled(client: TestClient[Any], url: str, count: int) -> None:
    wait_for(lambda: len(captured(url)) == count, f"{count} captured predictions")


def test_outcomes_join_their_predictions_once(loop_client: TestClient[Any], pg_url: str) -> None:
    ids = predict(loop_client, 3)
    settled(loop_client, pg_url, 3)
    body = {
        "records": [
            {"prediction_id": ids[0], "churned": True, "observed_at": LATER},
            {"prediction_id": ids[1], "churned": False, "observed_at": LATER},
            {"prediction_id": "00000000-0000-4000-8000-000000000000", "churned": True,
             "observed_at": LATER},
        ]
    }  # fmt: skip
    body = {"records": [timed(r) for r in body["records"]]}
    first = loop_client.post("/v1/feedback", json=body)
    assert first.status_code == 202
    answer = first.json()
    assert [r["status"] for r in answer["results"]] == [
        "recorded",
        "recorded",
        "unknown_prediction",
    ]
    assert "not sampled" in answer["results"][2]["reason"]
    assert answer["counts"]["recorded"] == 2

    again = loop_client.post("/v1/feedback", json=body).json()
    assert [r["status"] for r in again["results"]] == [
        "duplicate",
        "duplicate",
        "unknown_prediction",
    ]
    flipped = {"records": [{"prediction_id": ids[0], "churned": False, "observed_at": later()}]}
    assert loop_client.post("/v1/feedback", json=flipped).json()["results"][0]["status"] == (
        "conflict"
    )
    with psycopg.connect(pg_url) as conn:
        stored = conn.execute("SELECT prediction_id::text, churned FROM outcomes").fetchall()
    assert sorted(stored) == sorted([(ids[0], True), (ids[1], False)])


def test_a_customer_outcome_finds_their_hashed_latest_prediction(
    loop_client: TestClient[Any], pg_url: str
) -> None:
    first = predict(loop_client, 1, customer="alice")
    settled(loop_client, pg_url, 1)
    latest = predict(loop_client, 1, customer="alice")
    settled(loop_client, pg_url, 2)
    body = {"records": [{"customer_id": "alice", "churned": True, "observed_at": later()}]}
    result = loop_client.post("/v1/feedback", json=body).json()["results"][0]
    assert result == {
        "status": "recorded",
        "prediction_id": latest[0],
        "reason": "stored",
    }
    assert first != latest


@pytest.mark.parametrize(
    ("record", "path"),
    [
        ({"churned": True, "observed_at": LATER}, "$.records[0]"),
        (
            {"prediction_id": "00000000-0000-4000-8000-000000000000", "customer_id": "c",
             "churned": True, "observed_at": LATER},
            "$.records[0]",
        ),
        ({"prediction_id": "not-a-uuid", "churned": True, "observed_at": LATER},
         "$.records[0].prediction_id"),
        ({"customer_id": "c", "churned": "yes", "observed_at": LATER}, "$.records[0].churned"),
        ({"customer_id": "c", "churned": True, "observed_at": "2026-11-30T12:00:00"},
         "$.records[0].observed_at"),
        ({"customer_id": "c", "churned": True, "observed_at": "2999-01-01T00:00:00Z"},
         "$.records[0].observed_at"),
        ({"customer_id": "c", "churned": True, "observed_at": LATER, "extra": 1},
         "$.records[0].extra"),
        ({"customer_id": "c", "observed_at": LATER}, "$.records[0].churned"),
    ],
)  # fmt: skip
def test_a_malformed_record_is_a_422_naming_it_and_nothing_is_stored(
    loop_client: TestClient[Any], pg_url: str, record: dict[str, Any], path: str
) -> None:
    good = {"customer_id": "c", "churned": True, "observed_at": later()}
    response = loop_client.post("/v1/feedback", json={"records": [timed(record), good]})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["path"] == path
    with psycopg.connect(pg_url) as conn:
        exists = conn.execute("SELECT to_regclass('outcomes') IS NOT NULL").fetchone()
        if exists and exists[0]:
            assert conn.execute("SELECT count(*) FROM outcomes").fetchone() == (0,)


def test_malformed_bodies_are_4xx(loop_client: TestClient[Any]) -> None:
    assert loop_client.post("/v1/feedback", json={"records": []}).status_code == 422
    assert loop_client.post("/v1/feedback", content=b"{", headers=_json).status_code == 400
    assert loop_client.post("/v1/feedback", content=b"{}", headers={}).status_code == 415
    assert loop_client.get("/v1/feedback").status_code == 405


_json = {"content-type": "application/json"}


def test_without_a_store_feedback_is_503_naming_why(client: TestClient[Any]) -> None:
    body = {"records": [{"customer_id": "c", "churned": True, "observed_at": later()}]}
    response = client.post("/v1/feedback", json=body)
    assert response.status_code == 503
    assert "CHURN_CAPTURE_URL" in response.json()["detail"][0]["reason"]


def test_an_unreachable_store_is_503_and_predictions_still_answer(
    settings: Settings, model: Model
) -> None:
    capture = CaptureSettings(store_url="postgresql://churn:pw@127.0.0.1:1/none")
    with TestClient(app=create_app(settings, model=model, capture=capture)) as client:
        body = {"records": [{"customer_id": "c", "churned": True, "observed_at": later()}]}
        response = client.post("/v1/feedback", json=body)
        assert response.status_code == 503
        assert response.json()["error"] == "store_unavailable"
        assert "pw@" not in response.text
        assert client.post("/v1/predict", json=VALID_RECORD).status_code == 200


def connections_to(url: str) -> int:
    """Sessions on the test's database other than this one."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_shutdown_closes_the_store_feedback_opened(
    settings: Settings, model: Model, pg_url: str
) -> None:
    capture = CaptureSettings(store_url=pg_url, flush_seconds=0.05)
    with TestClient(app=create_app(settings, model=model, capture=capture)) as client:
        (prediction_id,) = predict(client, 1)
        settled(client, pg_url, 1)
        outcome = {"prediction_id": prediction_id, "churned": True, "observed_at": later()}
        assert client.post("/v1/feedback", json={"records": [outcome]}).status_code == 202
        assert connections_to(pg_url) >= 1
    wait_for(lambda: connections_to(pg_url) == 0, "the app's store connections closed")


def test_a_full_body_of_the_widest_records_fits_the_default_limit(
    loop_client: TestClient[Any],
) -> None:
    # At 1 MiB, a body of more than about 4,800 such records was a 413 while 10,000 were allowed.
    record = {
        "customer_id": "c" * 128,
        "churned": False,
        "observed_at": "2026-01-31T23:59:59.999999+14:00",
    }
    body = json.dumps({"records": [record] * MAX_RECORDS}).encode()
    response = loop_client.post("/v1/feedback", content=body, headers=_json)
    assert response.status_code == 202, response.text[:200]
    assert response.json()["counts"]["unknown_prediction"] == MAX_RECORDS == 10_000
