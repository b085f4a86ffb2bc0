"""The linear fast path: parity with ONNX Runtime, refusal of other models, exact contributions."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from churn_api.contract import FEATURES, CustomerFeatures
from churn_api.fixture import fixture_onnx_bytes
from churn_api.linear import PARITY_TOLERANCE, fit_linear
from churn_api.model import Model, model_from_bytes
from hypothesis import given, settings
from hypothesis import strategies as st
from service_testing import random_records


def test_fast_path_matches_onnx_runtime_on_many_rows(model: Model) -> None:
    records = random_records(20_000, seed=11)
    expected = model.onnx.probabilities(records)
    assert model.linear is not None
    batch = model.linear.probabilities(records)
    single = np.array([model.linear.probability(r) for r in records])
    assert np.max(np.abs(batch - expected)) <= PARITY_TOLERANCE
    assert np.max(np.abs(single - expected)) <= PARITY_TOLERANCE
    assert np.array_equal(model.probabilities(records), batch)


@settings(max_examples=200, deadline=None)
@given(
    st.builds(
        CustomerFeatures,
        tenure=st.integers(0, 120),
        monthly_charges=st.floats(0.0, 1000.0),
        support_tickets=st.integers(0, 100),
    )
)
def test_fast_path_parity_holds_for_any_valid_record(
    model: Model, record: CustomerFeatures
) -> None:
    expected = float(model.onnx.probabilities([record])[0])
    assert abs(model.probability(record) - expected) <= PARITY_TOLERANCE


def test_a_tree_model_gets_no_fast_path() -> None:
    data = fixture_onnx_bytes(kind="tree")
    tree = model_from_bytes(data, hashlib.sha256(data).hexdigest(), "2")
    assert fit_linear(tree.onnx.run_columns) is None


def test_a_model_that_disagrees_with_its_fit_gets_no_fast_path(model: Model) -> None:
    # A logistic model plus a tiny interaction of two numbers: linear almost everywhere,
    # so only the parity check on the contract's corners can refuse it.
    def almost_linear(columns: dict[str, np.ndarray]) -> np.ndarray:  # type: ignore[type-arg]
        p = model.onnx.run_columns(columns)
        logit = np.log(p) - np.log1p(-p)
        bump = 1e-4 * columns["tenure"][:, 0] * columns["support_tickets"][:, 0]
        return 1 / (1 + np.exp(-(logit + bump)))

    assert fit_linear(model.onnx.run_columns) is not None
    assert fit_linear(almost_linear) is None


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_contributions_add_up_to_the_score(model: Model, seed: int) -> None:
    (record,) = random_records(1, seed=seed)
    assert model.linear is not None
    shares = model.linear.contributions(record)
    assert set(shares) == set(FEATURES)
    logit = model.linear.intercept + sum(shares.values())
    assert 1 / (1 + math.exp(-logit)) == pytest.approx(model.probability(record), abs=1e-12)
