"""Model loading and scoring: every refusal, and the fast path's parity with ONNX Runtime."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from churn_api.contract import (
    CATEGORICAL_FEATURES,
    CONTRACT_METADATA_KEY,
    FEATURES,
    feature_contract_json,
)
from churn_api.fixture import fixture_onnx_bytes
from churn_api.linear import fit_linear
from churn_api.model import Model, load_model, model_from_bytes
from churn_api.storage import ModelLoadError
from onnx import TensorProto, helper
from service_testing import VALID_RECORD, random_records


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def refused(data: bytes, reason: str, match: str | None = None) -> ModelLoadError:
    with pytest.raises(ModelLoadError, match=match) as raised:
        model_from_bytes(data, sha(data), "1")
    assert raised.value.reason == reason
    return raised.value


def test_the_fixture_model_loads(model: Model, model_sha256: str) -> None:
    assert model.version == "1"
    assert model.sha256 == model_sha256
    assert model.threshold == 0.5
    assert model.metadata[CONTRACT_METADATA_KEY] == feature_contract_json()
    assert model.scorer == "linear"


def test_a_non_linear_model_runs_on_onnx_runtime() -> None:
    data = fixture_onnx_bytes(kind="tree")
    tree = model_from_bytes(data, sha(data), "2")
    assert tree.scorer == "onnxruntime"
    assert fit_linear(tree.onnx.run_columns) is None
    records = random_records(500, seed=3)
    assert np.array_equal(tree.probabilities(records), tree.onnx.probabilities(records))
    assert len(set(tree.probabilities(records).tolist())) > 2  # a real tree, not a constant


def test_digest_mismatch_is_refused(model_bytes: bytes) -> None:
    with pytest.raises(ModelLoadError, match="the pin says 0000") as raised:
        model_from_bytes(model_bytes, "0" * 64, "1")
    assert raised.value.reason == "digest_mismatch"


def test_bytes_that_are_not_onnx_are_refused() -> None:
    refused(b"\x80\x04not an onnx file", "invalid_model", "ONNX Runtime cannot open")


def with_metadata(data: bytes, **changes: str | None) -> bytes:
    proto = onnx.load_from_string(data)
    props = {p.key: p.value for p in proto.metadata_props}
    for name, value in changes.items():
        key = name.replace("__", ".")
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    del proto.metadata_props[:]
    helper.set_model_props(proto, props)
    return proto.SerializeToString()


def test_a_contract_that_disagrees_with_the_graph_is_refused(model_bytes: bytes) -> None:
    contract = json.loads(feature_contract_json())
    contract["features"]["tenures"] = contract["features"].pop("tenure")
    changed = json.dumps(contract, sort_keys=True, separators=(",", ":"))
    error = refused(
        with_metadata(model_bytes, churn__feature_contract=changed), "contract_mismatch"
    )
    assert "missing ['tenures'], extra ['tenure']" in error.detail


def test_a_different_contract_serves_its_own_bounds(model_bytes: bytes) -> None:
    # The API is the model's: a contract widening tenure makes 240 a valid request.
    contract = json.loads(feature_contract_json())
    contract["features"]["tenure"]["max"] = 240
    data = with_metadata(model_bytes, churn__feature_contract=json.dumps(contract))
    model = model_from_bytes(data, hashlib.sha256(data).hexdigest(), "1")
    record = model.types.decode_one.decode(json.dumps({**VALID_RECORD, "tenure": 240}))
    assert 0.0 <= model.probability(record) <= 1.0


def test_a_missing_feature_contract_is_refused(model_bytes: bytes) -> None:
    data = with_metadata(model_bytes, churn__feature_contract=None)
    refused(data, "contract_mismatch", "no 'churn.feature_contract'")


@pytest.mark.parametrize("threshold", [None, "high", "1.5", "nan"])
def test_a_bad_threshold_is_refused(model_bytes: bytes, threshold: str | None) -> None:
    refused(
        with_metadata(model_bytes, churn__threshold=threshold), "invalid_model", "churn.threshold"
    )


def graph_model(inputs: dict[str, int], output: str = "probabilities") -> bytes:
    """A tiny hand-made graph with the right metadata and the given inputs."""
    first = next(iter(inputs))
    nodes = [helper.make_node("Identity", [first], [output])]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, [None, 1]) for n, t in inputs.items()],
        [helper.make_tensor_value_info(output, inputs[first], [None, 1])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    helper.set_model_props(
        proto, {CONTRACT_METADATA_KEY: feature_contract_json(), "churn.threshold": "0.5"}
    )
    return proto.SerializeToString()


def contract_inputs() -> dict[str, int]:
    return {
        n: TensorProto.STRING if n in CATEGORICAL_FEATURES else TensorProto.FLOAT for n in FEATURES
    }


def test_inputs_that_differ_from_the_contract_are_refused() -> None:
    inputs = contract_inputs()
    inputs["tenure"] = TensorProto.INT64
    refused(graph_model(inputs), "contract_mismatch", "input 'tenure' is tensor\\(int64\\)")
    del inputs["tenure"]
    refused(graph_model(inputs), "contract_mismatch", "missing \\['tenure'\\]")


def test_a_model_without_the_probabilities_output_is_refused() -> None:
    refused(graph_model(contract_inputs(), output="scores"), "contract_mismatch", "probabilities")


def test_load_model_from_a_file(model_path: Path, model_sha256: str) -> None:
    model, seconds = load_model(model_path.as_uri(), model_sha256, "9")
    assert model.version == "9"
    assert seconds > 0


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no file at") as raised:
        load_model((tmp_path / "absent.onnx").as_uri(), "0" * 64, "1")
    assert raised.value.reason == "not_found"


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    # A directory where the file should be: readable by no one, root included.
    (tmp_path / "model.onnx").mkdir()
    with pytest.raises(ModelLoadError, match="cannot read") as raised:
        load_model((tmp_path / "model.onnx").as_uri(), "0" * 64, "1")
    assert raised.value.reason == "unreadable"
