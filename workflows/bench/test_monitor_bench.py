"""churn-monitor's wall time over a million captured predictions in the real PostgreSQL.

One million predictions over 30 days (the service's JSON features, COPY in
batches of 50,000) with outcomes for about half, in a throwaway database; the
timed part is the monitor step: read and join, per version and day quality and
PSI against the training profile, write the results, export the snapshot.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from churn_store.prediction_store import CapturedPrediction, open_store
from churn_workflows.loop import FEATURES
from churn_workflows.steps.monitor import MonitorConfig, run_monitor
from churn_workflows.steps.profile import publish_profile, training_profile
from pytest_benchmark.fixture import BenchmarkFixture

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "libs" / "churn-store" / "tests"))
from store_testing import postgres_database

ROWS = 1_000_000
NOW = datetime(2026, 11, 30, tzinfo=UTC)


def test_monitor_wall_time_for_a_million_captured_rows(
    benchmark: BenchmarkFixture, datasets: object, tmp_path: Path
) -> None:
    frame = datasets(ROWS)  # type: ignore[operator]
    rng = np.random.default_rng(3)
    probabilities = rng.random(ROWS)
    models = (tmp_path / "models").as_uri()
    publish_profile(training_profile(frame.head(50_000), probabilities[:50_000]), models, "a" * 64)
    features = [json.dumps(r) for r in frame[list(FEATURES)].to_dict("records")]
    offsets = rng.integers(0, 30 * 86400, ROWS)
    with postgres_database("monitorbench") as url:
        store = open_store(url)
        store.migrate()
        for start in range(0, ROWS, 50_000):
            store.write_predictions(
                [
                    CapturedPrediction(str(uuid.uuid4()), NOW - timedelta(seconds=int(offsets[i])),
                                       "1", "a" * 64, None, features[i],
                                       float(probabilities[i]), bool(probabilities[i] >= 0.5), 0.5)
                    for i in range(start, min(start + 50_000, ROWS))
                ]
            )  # fmt: skip
        store.close()
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO outcomes (prediction_id, predicted_at, churned, observed_at, source) "
                "SELECT prediction_id, predicted_at, random() < 0.4, now(), 'bench' "
                "FROM predictions WHERE random() < 0.5"
            )
        config = MonitorConfig(url, models, (tmp_path / "data").as_uri())
        report = benchmark.pedantic(
            run_monitor, args=(config,), kwargs={"now": NOW}, rounds=1, iterations=1
        )
    assert report.rows == ROWS
    benchmark.extra_info["rows"] = ROWS
    benchmark.extra_info["seconds"] = round(report.seconds, 1)
