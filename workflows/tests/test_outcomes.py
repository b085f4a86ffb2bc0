"""churn-outcomes' step: a billing file of outcomes into the real PostgreSQL, checked as the API."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from churn_store.outcomes import hash_customer_id
from churn_store.prediction_store import CapturedPrediction, open_store
from churn_workflows import PipelineError
from churn_workflows.steps import outcomes as outcomes_step
from churn_workflows.steps.outcomes import load_outcomes

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "libs" / "churn-store" / "tests"))
from store_testing import postgres_database

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def store_url() -> Iterator[str]:
    with postgres_database("outcomes") as url:
        yield url


def predictions(url: str, customers: list[str | None]) -> list[str]:
    rows = [
        CapturedPrediction(str(uuid.uuid4()), NOW - timedelta(days=40), "1", "a" * 64, c,
                           "{}", 0.7, True, 0.5)
        for c in customers
    ]  # fmt: skip
    store = open_store(url)
    store.migrate()
    store.write_predictions(rows)
    store.close()
    return [r.prediction_id for r in rows]


def outcome_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM outcomes").fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_billing_file_loads_once_with_a_report(
    store_url: str, tmp_path: Path, suffix: str
) -> None:
    ids = predictions(store_url, [None, None, hash_customer_id("c-7", b"key")])
    frame = pd.DataFrame(
        {
            "prediction_id": [ids[0], ids[1], None, str(uuid.uuid4())],
            "customer_id": [None, None, "c-7", None],
            "churned": [True, False, True, False],
            "observed_at": ["2026-11-01T00:00:00Z"] * 4,
        }
    )
    path = tmp_path / f"outcomes.{suffix}"
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path, index=False)

    report = load_outcomes(path.as_uri(), store_url, customer_id_key=b"key", now=NOW)
    assert report.rows == 4
    assert report.counts == {"recorded": 3, "unknown_prediction": 1}
    assert report.unknown == [frame["prediction_id"][3]]
    again = load_outcomes(path.as_uri(), store_url, customer_id_key=b"key", now=NOW)
    assert again.counts == {"duplicate": 3, "unknown_prediction": 1}
    assert outcome_count(store_url) == 3


def test_one_bad_row_refuses_the_file_naming_each_bad_row(store_url: str, tmp_path: Path) -> None:
    ids = predictions(store_url, [None])
    path = tmp_path / "outcomes.csv"
    path.write_text(
        "prediction_id,customer_id,churned,observed_at\n"
        f"{ids[0]},,true,2026-11-01T00:00:00Z\n"
        ",,true,2026-11-01T00:00:00Z\n"
        f"{ids[0]},,maybe,2026-11-01T00:00:00Z\n"
        f"{ids[0]},,true,2999-01-01T00:00:00Z\n"
    )
    with pytest.raises(PipelineError) as caught:
        load_outcomes(path.as_uri(), store_url, now=NOW)
    message = str(caught.value)
    assert "3 bad row(s), nothing loaded" in message
    assert "row 3: name exactly one of prediction_id and customer_id" in message
    assert "row 4" in message
    assert "row 5.observed_at" in message
    assert outcome_count(store_url) == 0


def test_unexpected_columns_are_refused(store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "outcomes.csv"
    path.write_text("id,label\nx,true\n")
    with pytest.raises(PipelineError, match=r"unexpected column\(s\) \['id', 'label'\]"):
        load_outcomes(path.as_uri(), store_url, now=NOW)


def test_the_step_command_reports_and_retries_an_unreachable_store(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = predictions(store_url, [None])
    path = tmp_path / "outcomes.csv"
    path.write_text(f"prediction_id,churned,observed_at\n{ids[0]},true,2026-11-01T00:00:00Z\n")
    out = tmp_path / "out"
    argv = ["--source", path.as_uri(), "--output", str(out)]
    assert outcomes_step.main([*argv, "--store-url", store_url]) == 0
    assert json.loads((out / "outcomes.json").read_text())["counts"] == {"recorded": 1}
    assert outcomes_step.main([*argv, "--store-url", "postgresql://x@127.0.0.1:1/no"]) == 75
    bad = tmp_path / "bad.csv"
    bad.write_text("prediction_id,churned,observed_at\nnot-an-id,true,2026-11-01T00:00:00Z\n")
    assert outcomes_step.main(["--source", bad.as_uri(), "--output", str(out),
                               "--store-url", store_url]) == 1  # fmt: skip
    assert "prediction_id" in capsys.readouterr().err
