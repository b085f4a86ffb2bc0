"""Export: turn a fitted scikit-learn Pipeline into the serving artifact, one ONNX file.

Steps: convert with skl2onnx (one graph input per feature, as the contract
says: ``tensor(string)`` for categories, ``tensor(float)`` for the rest), keep
only the ``probabilities`` output, write the feature contract and the decision
threshold into ``metadata_props``, then check parity: ONNX Runtime and
scikit-learn must agree on every holdout row within ``MAX_PARITY_DIFF``. What the
gate evaluates is this file, so what is evaluated is what is served.

Same data, code and parameters give the same bytes, hence the same sha256: the
graph has a fixed name (skl2onnx would draw a random one), and nothing that
differs between runs (the MLflow run id, the registry version, the commit, the
workflow) goes into the file. Those live in the lineage record beside it
(``churn_workflows.lineage``).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort  # type: ignore[import-untyped,unused-ignore]
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from churn_contract import (
    CONTRACT_METADATA_KEY,
    PROBABILITY_OUTPUT,
    Contract,
    ContractError,
    builtin_contract,
    categorical_features,
    contract_from_json,
    contract_json,
    feature_names,
)
from skl2onnx import convert_sklearn  # type: ignore[import-untyped,unused-ignore]
from skl2onnx.common.data_types import FloatTensorType, StringTensorType  # type: ignore[import-untyped,unused-ignore]
from sklearn.pipeline import Pipeline  # type: ignore[import-untyped,unused-ignore]

from churn_workflows import PipelineError

__all__ = [
    "ARTIFACT_METADATA_KEYS",
    "GRAPH_NAME",
    "MAX_PARITY_DIFF",
    "artifact_contract",
    "export_onnx",
    "model_frame",
    "model_inputs",
    "onnx_probabilities",
    "parity",
    "sha256",
    "stamp",
]

MAX_PARITY_DIFF = 1e-3
GRAPH_NAME = "churn-model"
# What the artifact's metadata may hold beside the contract: facts of the model itself,
# never of the run that made it (those would make identical models differ).
ARTIFACT_METADATA_KEYS = ("churn.threshold",)
_OPSET = 17


def model_inputs(
    frame: pd.DataFrame, contract: Contract | None = None
) -> dict[str, np.ndarray[Any, Any]]:
    """The ONNX feeds for ``frame``: one ``[n, 1]`` array per feature of ``contract``."""
    contract = contract or builtin_contract()
    categorical = categorical_features(contract)
    feeds: dict[str, np.ndarray[Any, Any]] = {}
    for name in feature_names(contract):
        column = frame[name]
        if name in categorical:
            feeds[name] = column.astype(str).to_numpy(dtype=object).reshape(-1, 1)
        else:
            feeds[name] = column.to_numpy(dtype=np.float32).reshape(-1, 1)
    return feeds


def model_frame(frame: pd.DataFrame, contract: Contract | None = None) -> pd.DataFrame:
    """The features as the Pipeline sees them: strings, and numbers rounded through float32.

    ONNX Runtime computes in float32; feeding scikit-learn the same float32
    values keeps tree thresholds from splitting the two apart.
    """
    contract = contract or builtin_contract()
    categorical = categorical_features(contract)
    out = pd.DataFrame(index=frame.index)
    for name in feature_names(contract):
        if name in categorical:
            out[name] = frame[name].astype(str).to_numpy(dtype=object)
        else:
            out[name] = frame[name].to_numpy(dtype=np.float32).astype(np.float64)
    return out


def export_onnx(
    pipeline: Pipeline, facts: Mapping[str, str], contract: Contract | None = None
) -> bytes:
    """Convert ``pipeline`` and stamp ``contract`` and ``facts`` (``ARTIFACT_METADATA_KEYS``)."""
    contract = contract or builtin_contract()
    categorical = categorical_features(contract)
    initial_types: list[tuple[str, Any]] = [
        (
            name,
            StringTensorType([None, 1]) if name in categorical else FloatTensorType([None, 1]),
        )
        for name in feature_names(contract)
    ]
    classifier = pipeline.steps[-1][1]
    try:
        with warnings.catch_warnings():
            # skl2onnx writes booleans into int attributes; protobuf < 7 accepts them.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"onnx\.helper")
            model = convert_sklearn(
                pipeline,
                initial_types=initial_types,
                name=GRAPH_NAME,
                target_opset=_OPSET,
                options={id(classifier): {"zipmap": False}},
            )
    except Exception as exc:  # skl2onnx raises plain RuntimeError/NotImplementedError
        raise PipelineError(f"ONNX export of {type(classifier).__name__} failed: {exc}") from None
    outputs = [o for o in model.graph.output if o.name == PROBABILITY_OUTPUT]
    if len(outputs) != 1:
        raise PipelineError(f"the converted graph has no {PROBABILITY_OUTPUT!r} output")
    del model.graph.output[:]
    model.graph.output.extend(outputs)
    model.graph.name = GRAPH_NAME
    sort_opset_imports(model)
    onnx.checker.check_model(model)
    return stamp(model.SerializeToString(), facts, contract)


def sort_opset_imports(model: onnx.ModelProto) -> None:
    """Order ``model``'s opset imports by domain, in place.

    skl2onnx lists them in the order it met the domains, and that order varies between
    runs of the same conversion (seen on a busy machine): sorted, the same model always
    serialises to the same bytes, so its sha256 names it.
    """
    ordered = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    for domain, version in ordered:
        model.opset_import.add(domain=domain, version=version)


def stamp(artifact: bytes, facts: Mapping[str, str], contract: Contract | None = None) -> bytes:
    """``artifact`` with ``facts`` (and ``contract``, when given) in its metadata.

    The graph is unchanged. Without ``contract`` the artifact keeps the one it
    carries (the default when none).
    """
    unknown = set(facts) - set(ARTIFACT_METADATA_KEYS)
    if unknown:
        raise PipelineError(
            f"metadata key(s) {sorted(unknown)} would make identical models differ; "
            f"the artifact holds only {', '.join(ARTIFACT_METADATA_KEYS)} (lineage goes to "
            "lineage.json)"
        )
    model = onnx.load_from_string(artifact)
    props = {p.key: p.value for p in model.metadata_props}
    if contract is not None or CONTRACT_METADATA_KEY not in props:
        props[CONTRACT_METADATA_KEY] = contract_json(contract or builtin_contract())
    props.update(facts)
    del model.metadata_props[:]
    for key in sorted(props):
        model.metadata_props.add(key=key, value=props[key])
    return bytes(model.SerializeToString())


def artifact_contract(artifact: bytes) -> Contract:
    """The feature contract ``artifact`` carries in its metadata."""
    props = {p.key: p.value for p in onnx.load_from_string(artifact).metadata_props}
    if CONTRACT_METADATA_KEY not in props:
        raise PipelineError(f"the ONNX artifact has no {CONTRACT_METADATA_KEY!r} metadata")
    try:
        return contract_from_json(props[CONTRACT_METADATA_KEY], CONTRACT_METADATA_KEY)
    except ContractError as exc:
        raise PipelineError(str(exc)) from None


def onnx_probabilities(artifact: bytes, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """The churn probability of each row of ``frame``, fed as the artifact's contract says."""
    contract = artifact_contract(artifact)
    missing = [name for name in feature_names(contract) if name not in frame.columns]
    if missing:
        raise PipelineError(
            f"the data lacks feature(s) {missing} of the model's contract {contract.name!r}"
        )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(artifact, options, providers=["CPUExecutionProvider"])
    (result,) = session.run([PROBABILITY_OUTPUT], model_inputs(frame, contract))
    return np.asarray(result, dtype=np.float64)[:, 1]


def parity(pipeline: Pipeline, artifact: bytes, frame: pd.DataFrame) -> float:
    """Max absolute probability difference on ``frame``; above ``MAX_PARITY_DIFF`` fails."""
    expected = pipeline.predict_proba(model_frame(frame, artifact_contract(artifact)))[:, 1]
    diff = float(np.max(np.abs(onnx_probabilities(artifact, frame) - expected)))
    if diff > MAX_PARITY_DIFF:
        raise PipelineError(
            f"ONNX and scikit-learn disagree on the holdout: max |p_onnx - p_sklearn| = "
            f"{diff:.2e} > {MAX_PARITY_DIFF}"
        )
    return diff


def sha256(artifact: bytes) -> str:
    """The artifact's sha256, lower-case hex: its content address and its pin."""
    return hashlib.sha256(artifact).hexdigest()
