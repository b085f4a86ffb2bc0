"""Benchmark fixtures: synthetic datasets built once per size, outside the timed code."""

from __future__ import annotations

import os

# ruff: noqa: E402 - thread settings must precede the numeric imports
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from functools import cache

import pandas as pd
import pytest
from churn_workflows.steps.synthetic import generate


@cache
def dataset(rows: int, seed: int = 7) -> pd.DataFrame:
    """``rows`` synthetic customers (cached: generating a million takes a few seconds)."""
    return generate(rows, seed=seed)


@pytest.fixture(scope="session")
def datasets() -> object:
    """The cached ``dataset`` function."""
    return dataset
