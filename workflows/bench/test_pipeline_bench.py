"""Pipeline speed: validation throughput, and validate + train best + export + evaluate wall time.

Run by ``make bench`` only (``--benchmark-only``); the million-row case never runs in the tests.
Target: one million rows in at most 120 s on a 2-core machine.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from churn_workflows.pin import BOOTSTRAP_SHA256, Pin
from churn_workflows.steps.evaluate import GateConfig, evaluate
from churn_workflows.steps.export import export_onnx, model_frame, parity
from churn_workflows.steps.train import build_pipeline, candidates, choose_threshold, split
from churn_workflows.steps.validate import validate
from pytest_benchmark.fixture import BenchmarkFixture

Data = Callable[..., pd.DataFrame]
NO_RUNNING_MODEL = Pin("file:///none.onnx", BOOTSTRAP_SHA256, "0")


@pytest.mark.parametrize("rows", [100_000, 1_000_000])
def test_validation_rows_per_second(benchmark: BenchmarkFixture, datasets: Data, rows: int) -> None:
    frame, reference = datasets(rows), datasets(max(rows // 10, 10_000), 11)
    report = benchmark.pedantic(
        validate, args=(frame,), kwargs={"source": "bench", "reference": reference}, rounds=3
    )
    assert report.passed
    benchmark.extra_info["rows_per_second"] = round(rows / benchmark.stats.stats.mean)


def _validate_train_export_evaluate(frame: pd.DataFrame, reference: pd.DataFrame) -> float:
    assert validate(frame, source="bench", reference=reference).passed
    parts = split(frame)
    best = build_pipeline(candidates()[1])  # logistic regression C=1: the sweep's usual winner
    best.fit(model_frame(parts.train), parts.train["churn"])
    valid_p = best.predict_proba(model_frame(parts.valid))[:, 1]
    threshold = choose_threshold(parts.valid["churn"].to_numpy(), valid_p)
    artifact = export_onnx(best, {"churn.threshold": str(threshold)})
    parity(best, artifact, parts.holdout)
    result = evaluate(artifact, parts.holdout, running_pin=NO_RUNNING_MODEL, gate=GateConfig())
    return float(result.candidate["roc_auc"])


@pytest.mark.parametrize("rows", [100_000, 1_000_000])
def test_validate_train_export_evaluate_wall_time(
    benchmark: BenchmarkFixture, datasets: Data, rows: int
) -> None:
    frame, reference = datasets(rows), datasets(max(rows // 10, 10_000), 11)
    auc = benchmark.pedantic(
        _validate_train_export_evaluate, args=(frame, reference), rounds=1, iterations=1
    )
    assert auc > 0.7
    benchmark.extra_info["seconds"] = round(benchmark.stats.stats.mean, 1)
