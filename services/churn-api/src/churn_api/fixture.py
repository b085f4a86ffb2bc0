"""Build a small, real ONNX churn model for tests and ``churn-api serve-local``.

Steps: draw a seeded synthetic dataset over a feature contract (default: the
built-in ``churn``), fit a
scikit-learn pipeline (one-hot categories and scaled numbers into a logistic
regression, or a decision tree for a model the fast path must refuse), convert it
with skl2onnx to the artifact of docs/contracts.md (one input per feature,
output ``probabilities``) and write the metadata the service checks.

This module needs the dev dependencies (scikit-learn, skl2onnx, onnx). The
service never imports it: only ``churn-api serve-local`` does, when no promoted
model exists, and tests. A test proves the serving path stays free of it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import pandas as pd  # type: ignore[import-untyped]
from churn_contract import (
    CONTRACT_METADATA_KEY,
    PROBABILITY_OUTPUT,
    Contract,
    builtin_contract,
    categorical_features,
    numeric_features,
)
from churn_contract import contract_json as encode_contract
from skl2onnx import to_onnx  # type: ignore[import-untyped]
from skl2onnx.common.data_types import (  # type: ignore[import-untyped]
    FloatTensorType,
    Int64TensorType,
    StringTensorType,
)
from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # type: ignore[import-untyped]
from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

__all__ = ["build_fixture_model", "fixture_frame", "fixture_onnx_bytes"]


def fixture_frame(
    rows: int = 2000, seed: int = 7, contract: Contract | None = None
) -> tuple[Any, Any]:
    """A seeded synthetic dataset over ``contract``: (features DataFrame, churn labels).

    Every value lies within the contract (numbers uniform over their range);
    the label is drawn from a logistic function with seeded weights per
    category and per scaled number.
    """
    contract = contract or builtin_contract()
    rng = np.random.default_rng(seed)
    weights = np.random.default_rng(seed + 1)
    data: dict[str, Any] = {}
    logit = np.full(rows, -0.5)
    for name, feature in contract.features.items():
        if feature.type == "category":
            levels = list(feature.categories or ())
            data[name] = rng.choice(levels, size=rows)
            effect = dict(zip(levels, weights.normal(0.0, 0.8, len(levels)), strict=True))
            logit += np.array([effect[v] for v in data[name]])
        elif feature.type == "bool":
            data[name] = rng.integers(0, 2, size=rows).astype(np.float32)
            logit += weights.normal(0.0, 0.5) * data[name]
        else:
            low, high = float(feature.min or 0), float(feature.max or 0)
            values = rng.uniform(low, high, size=rows)
            data[name] = (values.round() if feature.type == "int" else values).astype(np.float32)
            scaled = (data[name] - (low + high) / 2) / max((high - low) / 2, 1e-9)
            logit += weights.normal(0.0, 0.8) * scaled
    labels = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(data), labels


def fixture_onnx_bytes(
    *,
    version: str = "1",
    threshold: float = 0.5,
    kind: Literal["logistic", "tree"] = "logistic",
    contract_json: str | None = None,
    contract: Contract | None = None,
) -> bytes:
    """Fit the fixture pipeline over ``contract`` (default: ``churn``); return the ONNX bytes.

    ``contract_json`` overrides the embedded metadata (to test refusals).
    """
    contract = contract or builtin_contract()
    categorical, numeric = categorical_features(contract), numeric_features(contract)
    frame, labels = fixture_frame(contract=contract)
    categories = [list(contract.features[name].categories or ()) for name in categorical]
    classifier: Any = (
        LogisticRegression(max_iter=1000)
        if kind == "logistic"
        else DecisionTreeClassifier(max_depth=4, random_state=0)
    )
    pipeline = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        (
                            "categories",
                            OneHotEncoder(categories=categories),
                            list(categorical),
                        ),
                        ("numbers", StandardScaler(), list(numeric)),
                    ]
                ),
            ),
            ("classifier", classifier),
        ]
    )
    pipeline.fit(frame, labels)
    initial_types = [(name, StringTensorType([None, 1])) for name in categorical] + [
        (name, FloatTensorType([None, 1])) for name in numeric
    ]
    proto = to_onnx(
        pipeline,
        initial_types=initial_types,
        options={id(classifier): {"zipmap": False}},
        final_types=[
            ("label", Int64TensorType([None])),
            (PROBABILITY_OUTPUT, FloatTensorType([None, 2])),
        ],
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onnx.helper.set_model_props(
        proto,
        {
            CONTRACT_METADATA_KEY: contract_json
            if contract_json is not None
            else encode_contract(contract),
            "churn.model_version": version,
            "churn.mlflow_run_id": "fixture",
            "churn.data_sha256": hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest(),
            "churn.git_commit": "0" * 40,
            "churn.threshold": repr(threshold),
        },
    )
    data: bytes = proto.SerializeToString()
    return data


def build_fixture_model(
    path: Path,
    *,
    version: str = "1",
    kind: Literal["logistic", "tree"] = "logistic",
    contract: Contract | None = None,
) -> str:
    """Write the fixture model to ``path``; return its sha256 (the pin's ``MODEL_SHA256``)."""
    data = fixture_onnx_bytes(version=version, kind=kind, contract=contract)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()
