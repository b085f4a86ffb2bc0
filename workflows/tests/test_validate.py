"""Validate: every violation named with its column and rows; drift by PSI; the report files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from churn_workflows.steps.ingest import write_dataset
from churn_workflows.steps.synthetic import generate
from churn_workflows.steps.validate import Thresholds, main, psi, validate, write_report


def test_clean_data_passes_with_psi_for_every_feature(
    frame: pd.DataFrame, reference: pd.DataFrame
) -> None:
    report = validate(frame, source="data.csv", reference=reference, reference_source="ref.csv")
    assert report.passed, report.violations
    assert set(report.psi) == {c for c in frame.columns if c not in {"customer_id", "churn"}}
    assert max(report.psi.values()) < 0.05


def test_wrong_columns_are_named(frame: pd.DataFrame) -> None:
    wrong = frame.rename(columns={"tenure": "tenure_months"})
    report = validate(wrong, source="data.csv")
    assert report.violations == [
        "data.csv: missing column(s) tenure",
        "data.csv: unexpected column(s) tenure_months",
    ]


def test_an_all_blank_column_is_named(frame: pd.DataFrame) -> None:
    broken = frame.copy()
    broken["monthly_charges"] = None
    report = validate(broken, source="data.csv")
    assert report.violations == [
        "data.csv: column 'monthly_charges': blank in 3000 row(s), such as rows 0, 1, 2, ..., "
        "and the contract declares no impute for 'monthly_charges'"
    ]


def test_bad_values_are_named_with_their_rows(frame: pd.DataFrame) -> None:
    bad = frame.copy()
    bad.loc[3, "tenure"] = 500
    bad.loc[4, "contract_type"] = "weekly"
    bad.loc[8, "customer_id"] = bad.loc[7, "customer_id"]
    bad.loc[9, "support_tickets"] = None
    report = validate(bad, source="data.csv")
    assert report.violations == [
        "data.csv: column 'customer_id' (id): duplicate ids in 2 row(s), such as rows 7, 8: "
        "'c-7-00000007' (2)",
        "data.csv: column 'tenure': outside [0, 120] in 1 row(s), such as rows 3: '500' (1)",
        "data.csv: column 'contract_type': unmapped value(s) 'weekly' (1) in 1 row(s), "
        "such as rows 4; the contract maps ['month-to-month', 'one-year', 'two-year']",
        "data.csv: column 'support_tickets': blank in 1 row(s), such as rows 9, "
        "and the contract declares no impute for 'support_tickets'",
    ]
    assert report.conformed is None


def test_a_passing_report_holds_the_conformed_table(frame: pd.DataFrame) -> None:
    report = validate(frame, source="d")
    assert report.passed
    assert report.conformed is not None
    assert list(report.conformed.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(report.conformed, frame, check_dtype=False)


def test_drift_beyond_the_threshold_is_named(reference: pd.DataFrame) -> None:
    drifted = generate(3000, seed=7, drift={"monthly_charges": 1.0})
    report = validate(drifted, source="today.csv", reference=reference, reference_source="ref.csv")
    assert len(report.violations) == 1
    assert report.violations[0].startswith(
        "today.csv: feature 'monthly_charges' drifted from ref.csv: PSI "
    )
    assert validate(
        drifted, source="d", reference=reference, thresholds=Thresholds(max_psi=50.0)
    ).passed


def test_label_balance_is_checked(frame: pd.DataFrame) -> None:
    skewed = frame.copy()
    skewed["churn"] = False
    report = validate(skewed, source="d.csv")
    assert report.violations == [
        "d.csv: label 'churn' positive rate 0.000 outside [0.05, 0.95] (3000 rows)"
    ]


def test_psi_is_zero_for_identical_and_large_for_shifted() -> None:
    values = pd.Series(range(1000), dtype=float)
    assert psi(values, values, "float") == pytest.approx(0.0, abs=1e-9)
    assert psi(values + 500, values, "float") > 1.0
    cats = pd.Series(["a"] * 50 + ["b"] * 50)
    assert psi(pd.Series(["a"] * 90 + ["b"] * 10), cats, "category") > 0.2


def test_the_report_is_kept_as_json_and_markdown(
    tmp_path: Path, frame: pd.DataFrame, reference: pd.DataFrame
) -> None:
    bad = frame.copy()
    bad.loc[0, "tenure"] = -1
    as_json, as_md = write_report(validate(bad, source="d", reference=reference), tmp_path)
    data = json.loads(as_json.read_text())
    assert data["passed"] is False
    assert data["rows"] == len(frame)
    assert "outside [0, 120]" in data["violations"][0]
    assert "### Data validation: FAILED" in as_md.read_text()
    assert "- contract: `churn`" in as_md.read_text()


def test_command_fails_on_violations_and_keeps_the_report(
    tmp_path: Path, frame: pd.DataFrame, reference: pd.DataFrame
) -> None:
    write_dataset(frame, str(tmp_path / "d.parquet"))
    write_dataset(generate(2000, seed=1, drift={"tenure": 2.0}), str(tmp_path / "ref.parquet"))
    args = ["--data", str(tmp_path / "d.parquet"), "--report-dir", str(tmp_path / "r")]
    assert main(args) == 0
    assert main([*args, "--reference", str(tmp_path / "ref.parquet")]) == 1
    assert "drifted" in (tmp_path / "r" / "validation.md").read_text()
