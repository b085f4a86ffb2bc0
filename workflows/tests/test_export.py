"""Export: the contract's inputs, output and metadata, and agreement with scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pandas as pd
import pytest
from churn_contract import builtin_contract, categorical_features, contract_json, feature_names
from churn_workflows import PipelineError
from churn_workflows.steps.export import (
    export_onnx,
    onnx_probabilities,
    parity,
    sha256,
    sort_opset_imports,
    stamp,
)
from churn_workflows.steps.train import build_pipeline, candidates, model_frame, split

FEATURES = feature_names(builtin_contract())
CATEGORICAL_FEATURES = categorical_features(builtin_contract())

STRING, FLOAT = onnx.TensorProto.STRING, onnx.TensorProto.FLOAT


@pytest.fixture(scope="module", params=[1, 3], ids=["logreg", "hgb"])
def fitted(request: pytest.FixtureRequest, frame: pd.DataFrame):  # type: ignore[no-untyped-def]
    parts = split(frame)
    pipeline = build_pipeline(candidates()[request.param])
    pipeline.fit(model_frame(parts.train), parts.train["churn"])
    return pipeline, parts


def test_inputs_outputs_and_metadata_follow_the_contract(fitted) -> None:  # type: ignore[no-untyped-def]
    pipeline, _ = fitted
    model = onnx.load_from_string(export_onnx(pipeline, {"churn.threshold": "0.4"}))
    inputs = {i.name: i.type.tensor_type for i in model.graph.input}
    assert list(inputs) == list(FEATURES)
    for name, tensor in inputs.items():
        assert tensor.elem_type == (STRING if name in CATEGORICAL_FEATURES else FLOAT)
        assert [d.dim_value for d in tensor.shape.dim] == [0, 1]
    assert [o.name for o in model.graph.output] == ["probabilities"]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["churn.feature_contract"] == contract_json(builtin_contract())
    assert props["churn.threshold"] == "0.4"
    assert set(props) == {"churn.feature_contract", "churn.threshold"}
    assert model.graph.name == "churn-model"


def test_same_data_code_and_parameters_give_the_same_bytes(fitted, frame: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    pipeline, parts = fitted
    again = build_pipeline(candidates()[1 if "LogisticRegression" in str(pipeline) else 3])
    again.fit(model_frame(parts.train), parts.train["churn"])
    first = export_onnx(pipeline, {"churn.threshold": "0.4"})
    second = export_onnx(again, {"churn.threshold": "0.4"})
    assert sha256(first) == sha256(second)
    assert first == second


def test_the_order_skl2onnx_lists_its_opsets_in_does_not_reach_the_bytes(fitted) -> None:  # type: ignore[no-untyped-def]
    pipeline, _ = fitted
    artifact = export_onnx(pipeline, {"churn.threshold": "0.4"})
    model = onnx.load_from_string(artifact)
    domains = [o.domain for o in model.opset_import]
    assert domains == sorted(domains)
    assert len(domains) > 1, "a logistic pipeline imports the default and the ai.onnx.ml domains"
    reversed_imports = [(o.domain, o.version) for o in reversed(model.opset_import)]
    del model.opset_import[:]
    for domain, version in reversed_imports:
        model.opset_import.add(domain=domain, version=version)
    assert model.SerializeToString() != artifact
    sort_opset_imports(model)
    assert model.SerializeToString() == artifact


def test_onnx_agrees_with_sklearn_on_the_holdout(fitted) -> None:  # type: ignore[no-untyped-def]
    pipeline, parts = fitted
    artifact = export_onnx(pipeline, {})
    assert parity(pipeline, artifact, parts.holdout) < 1e-5
    probabilities = onnx_probabilities(artifact, parts.holdout)
    assert probabilities.shape == (len(parts.holdout),)
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_a_disagreeing_artifact_fails_parity(fitted, frame: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    pipeline, parts = fitted
    other = build_pipeline(candidates()[0]).fit(model_frame(parts.train), ~parts.train["churn"])
    with pytest.raises(
        PipelineError,
        match=r"disagree on the holdout: max \|p_onnx - p_sklearn\| = \S+ > 0\.001",
    ):
        parity(pipeline, export_onnx(other, {}), parts.holdout)


def test_stamping_changes_metadata_only(fitted) -> None:  # type: ignore[no-untyped-def]
    pipeline, parts = fitted
    artifact = export_onnx(pipeline, {"churn.threshold": "0.5"})
    stamped = stamp(artifact, {"churn.threshold": "0.6"})
    assert sha256(stamped) != sha256(artifact)
    props = {p.key: p.value for p in onnx.load_from_string(stamped).metadata_props}
    assert props["churn.threshold"] == "0.6"
    np.testing.assert_array_equal(
        onnx_probabilities(artifact, parts.holdout), onnx_probabilities(stamped, parts.holdout)
    )
    # Per-run facts would give identical models different digests: they go to lineage.json.
    for key in ("churn.mlflow_run_id", "churn.model_version", "churn.git_commit", "churn.colour"):
        with pytest.raises(PipelineError, match="would make identical models differ"):
            stamp(artifact, {key: "x"})
    assert json.loads(props["churn.feature_contract"])["features"]["tenure"]["max"] == 120
