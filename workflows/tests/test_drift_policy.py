"""Drift that started a retrain is reported, not refused; broken data still refuses; a first run.

A fresh environment has no ``reference/customers.parquet``: validation then checks
everything but drift and says so, so the first ``churn-train`` run works. Its
registration writes the training profile that every later monitor run reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from churn_workflows.steps import validate as validate_step
from churn_workflows.steps.ingest import write_dataset
from churn_workflows.steps.synthetic import generate
from churn_workflows.steps.validate import Thresholds, validate

REFERENCE = generate(3000, seed=1)
SHIFTED = generate(3000, seed=2, drift={"tenure": 1.5})
REPORT = Thresholds(drift="report")


def test_drift_refuses_by_default_and_is_reported_when_it_is_the_reason() -> None:
    refused = validate(SHIFTED, source="s", reference=REFERENCE)
    assert not refused.passed
    assert any("'tenure' drifted" in v for v in refused.violations)

    reported = validate(
        SHIFTED, source="s", reference=REFERENCE, thresholds=Thresholds(drift="report")
    )
    assert reported.passed, reported.violations
    assert any("'tenure' drifted" in d for d in reported.drift_reported)
    assert "reported, not refused" in reported.to_markdown()


def test_broken_data_refuses_even_when_drift_is_only_reported() -> None:
    broken = SHIFTED.copy()
    broken.loc[3, "tenure"] = None
    report = validate(
        broken, source="s", reference=REFERENCE, thresholds=Thresholds(drift="report")
    )
    assert not report.passed
    assert any("tenure" in v and "drifted" not in v for v in report.violations), report.violations


def test_a_first_run_without_a_reference_validates_everything_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_dataset(SHIFTED, (tmp_path / "data.parquet").as_uri())
    missing = (tmp_path / "reference" / "customers.parquet").as_uri()
    argv = ["--data", data, "--reference", missing, "--report-dir", str(tmp_path / "r")]
    assert validate_step.main(argv) == 0
    assert "(first run): drift not measured" in capsys.readouterr().out
    write_dataset(REFERENCE, missing)
    assert validate_step.main(argv) == 1  # once a reference exists, drift is measured again
    assert validate_step.main([*argv, "--drift", "report"]) == 0
