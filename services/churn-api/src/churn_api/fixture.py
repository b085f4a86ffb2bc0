"""Build a small, real ONNX churn model for tests and ``churn-api serve-local``.

Steps: draw a seeded synthetic dataset over the feature contract, fit a
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

from churn_api.contract import (
    CATEGORICAL_FEATURES,
    CONTRACT_METADATA_KEY,
    NUMERIC_FEATURES,
    PROBABILITY_OUTPUT,
    feature_contract,
    feature_contract_json,
)

__all__ = ["build_fixture_model", "fixture_frame", "fixture_onnx_bytes"]


def fixture_frame(rows: int = 2000, seed: int = 7) -> tuple[Any, Any]:
    """A seeded synthetic dataset: (features DataFrame, churn labels)."""
    rng = np.random.default_rng(seed)
    spec = feature_contract()
    data: dict[str, Any] = {}
    for name in CATEGORICAL_FEATURES:
        data[name] = rng.choice(list(spec[name]["categories"]), size=rows)  # type: ignore[call-overload]
    for name in NUMERIC_FEATURES:
        kind = spec[name]["type"]
        if kind == "bool":
            data[name] = rng.integers(0, 2, size=rows).astype(np.float32)
        elif kind == "int":
            low, high = int(str(spec[name]["min"])), int(str(spec[name]["max"]))
            data[name] = rng.integers(low, high, size=rows).astype(np.float32)
        else:
            data[name] = rng.uniform(0.0, 150.0, size=rows).astype(np.float32)
    frame = pd.DataFrame(data)
    logit = (
        1.0
        - 0.04 * frame["tenure"]
        + 0.015 * frame["monthly_charges"]
        + 0.3 * frame["support_tickets"]
        + 1.2 * (frame["contract_type"] == "month-to-month")
        - 0.8 * (frame["contract_type"] == "two-year")
        + 0.5 * (frame["internet_service"] == "fiber-optic")
        + 0.4 * (frame["payment_method"] == "electronic-check")
        + 0.2 * frame["paperless_billing"]
        + 0.3 * frame["senior_citizen"]
        - 2.0
    )
    labels = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, labels


def fixture_onnx_bytes(
    *,
    version: str = "1",
    threshold: float = 0.5,
    kind: Literal["logistic", "tree"] = "logistic",
    contract_json: str | None = None,
) -> bytes:
    """Fit the fixture pipeline and return the ONNX artifact's bytes."""
    spec = feature_contract()
    frame, labels = fixture_frame()
    categories = [list(spec[name]["categories"]) for name in CATEGORICAL_FEATURES]  # type: ignore[call-overload]
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
                            list(CATEGORICAL_FEATURES),
                        ),
                        ("numbers", StandardScaler(), list(NUMERIC_FEATURES)),
                    ]
                ),
            ),
            ("classifier", classifier),
        ]
    )
    pipeline.fit(frame, labels)
    initial_types = [(name, StringTensorType([None, 1])) for name in CATEGORICAL_FEATURES] + [
        (name, FloatTensorType([None, 1])) for name in NUMERIC_FEATURES
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
            else feature_contract_json(),
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
    path: Path, *, version: str = "1", kind: Literal["logistic", "tree"] = "logistic"
) -> str:
    """Write the fixture model to ``path``; return its sha256 (the pin's ``MODEL_SHA256``)."""
    data = fixture_onnx_bytes(version=version, kind=kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()
