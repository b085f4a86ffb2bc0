"""In-process benchmarks: scoring 1 and 10,000 rows, and loading the model to ready.

Run by ``make bench`` (pytest-benchmark). Targets on a 2-core machine: one row
<= 50 us, 10,000 rows >= 1,000,000 rows/s, load to ready <= 1 s. The rows/s of
the batch benchmarks are in the ``rows_per_second`` column of extra_info.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from churn_api.contract import FEATURES, CustomerFeatures, feature_contract
from churn_api.fixture import fixture_onnx_bytes
from churn_api.model import Model, load_model, model_from_bytes

ROWS = 10_000


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    data = fixture_onnx_bytes(version="1")
    path = tmp_path_factory.mktemp("bench") / "model.onnx"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def model(artifact: tuple[Path, str]) -> Model:
    path, sha256 = artifact
    return model_from_bytes(path.read_bytes(), sha256, "1")


@pytest.fixture(scope="module")
def records() -> list[CustomerFeatures]:
    rng = np.random.default_rng(0)
    spec = feature_contract()
    rows = []
    for _ in range(ROWS):
        values: dict[str, Any] = {}
        for name in FEATURES:
            info = spec[name]
            if info["type"] == "category":
                values[name] = str(rng.choice(list(info["categories"])))  # type: ignore[call-overload]
            elif info["type"] == "bool":
                values[name] = bool(rng.integers(0, 2))
            elif info["type"] == "int":
                values[name] = int(rng.integers(0, int(str(info["max"])) + 1))
            else:
                values[name] = float(rng.uniform(0, 150))
        rows.append(CustomerFeatures(**values))
    return rows


def test_score_one_row(benchmark: Any, model: Model, records: list[CustomerFeatures]) -> None:
    benchmark.extra_info["scorer"] = model.scorer
    record = records[0]
    result = benchmark(model.probability, record)
    assert 0.0 <= result <= 1.0


def test_score_one_row_onnxruntime(
    benchmark: Any, model: Model, records: list[CustomerFeatures]
) -> None:
    # For scale: the same row through ONNX Runtime, the path any non-linear model takes.
    benchmark(model.onnx.probabilities, records[:1])


def test_score_10000_rows(benchmark: Any, model: Model, records: list[CustomerFeatures]) -> None:
    benchmark.extra_info["scorer"] = model.scorer
    result = benchmark(model.probabilities, records)
    benchmark.extra_info["rows_per_second"] = round(ROWS / benchmark.stats.stats.median)
    assert len(result) == ROWS


def test_score_10000_rows_onnxruntime(
    benchmark: Any, model: Model, records: list[CustomerFeatures]
) -> None:
    benchmark(model.onnx.probabilities, records)
    benchmark.extra_info["rows_per_second"] = round(ROWS / benchmark.stats.stats.median)


def test_load_to_ready(benchmark: Any, artifact: tuple[Path, str], records: list[Any]) -> None:
    path, sha256 = artifact

    def load() -> Model:
        # Fetch, verify the digest and the contract, fit the fast path, warm both paths.
        loaded, _ = load_model(path.as_uri(), sha256, "1")
        loaded.probability(records[0])
        loaded.probabilities(records[:2])
        return loaded

    loaded = benchmark.pedantic(load, rounds=5, iterations=1, warmup_rounds=1)
    assert loaded.scorer == "linear"
