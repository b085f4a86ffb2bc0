"""The synthetic generator: deterministic, within the contract, drift where asked."""

from __future__ import annotations

import pandas as pd
import pytest
from churn_contract import builtin_contract
from churn_workflows.steps.ingest import read_dataset
from churn_workflows.steps.synthetic import generate, main
from churn_workflows.steps.validate import conform


def test_the_same_seed_gives_the_same_rows() -> None:
    pd.testing.assert_frame_equal(generate(500, seed=3), generate(500, seed=3))
    assert not generate(500, seed=3).equals(generate(500, seed=4))


def test_every_row_is_a_valid_customer_record(frame: pd.DataFrame) -> None:
    conformed, violations = conform(frame, builtin_contract(), "synthetic")
    assert violations == []
    assert conformed is not None
    assert len(conformed) == len(frame)


def test_the_label_depends_on_the_features(frame: pd.DataFrame) -> None:
    rate = frame.groupby("contract_type")["churn"].mean()
    assert rate["month-to-month"] > rate["one-year"] > rate["two-year"]
    assert 0.2 < frame["churn"].mean() < 0.6


def test_drift_moves_the_named_feature_only() -> None:
    base, drifted = generate(4000, seed=5), generate(4000, seed=5, drift={"tenure": 1.0})
    assert drifted["tenure"].mean() > base["tenure"].mean() + 10
    assert drifted["tenure"].max() <= 120
    pd.testing.assert_series_equal(base["monthly_charges"], drifted["monthly_charges"])
    moved = generate(4000, seed=5, drift={"internet_service": 0.5})
    assert (moved["internet_service"] == "none").mean() > 0.5


def test_drift_on_an_unknown_feature_is_refused() -> None:
    with pytest.raises(ValueError, match="'colour', which is not a feature"):
        generate(10, drift={"colour": 1.0})


def test_command_writes_a_dataset(tmp_path) -> None:
    out = tmp_path / "d.csv"
    assert main(["--rows", "50", "--output", str(out), "--drift", "tenure=0.5"]) == 0
    assert len(read_dataset(str(out)).frame) == 50
