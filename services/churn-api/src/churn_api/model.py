"""Load, verify and run the pinned ONNX model. No web imports, no unpickling.

Steps of ``load_model``:

1. fetch the artifact's bytes (``storage.fetch``);
2. refuse it unless its sha256 equals the pin's ``MODEL_SHA256``;
3. open it with ONNX Runtime (an ONNX file is data: opening it runs no code);
4. read its feature contract (metadata ``churn.feature_contract``), build the
   request types from it (``contract.request_types``) and refuse the model
   unless its inputs and output are exactly the ones the contract describes;
5. read the decision threshold (``churn.threshold``);
6. look for the linear fast path (``linear.py``) and warm both paths up.

A model the fast path cannot reproduce exactly (trees, interactions) is scored
by ONNX Runtime alone.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
from churn_contract import Contract, ContractError, contract_from_json

from churn_api.contract import (
    CONTRACT_METADATA_KEY,
    DEFAULT_MAX_BATCH,
    PROBABILITY_OUTPUT,
    CustomerRecord,
    RequestTypes,
    request_types,
)
from churn_api.linear import LinearScorer, fit_linear
from churn_api.storage import ModelLoadError, fetch

__all__ = [
    "THRESHOLD_METADATA_KEY",
    "Model",
    "OnnxScorer",
    "load_model",
    "model_from_bytes",
]

THRESHOLD_METADATA_KEY: Final = "churn.threshold"
_FloatArray = npt.NDArray[np.float64]


class OnnxScorer:
    """Churn probabilities from an ONNX Runtime session, one call per batch."""

    def __init__(self, session: ort.InferenceSession, types: RequestTypes) -> None:
        self._session = session
        self._categorical = types.categorical
        self._numeric = types.numeric
        self._getters = {name: attrgetter(name) for name in types.features}

    def run_columns(self, columns: dict[str, npt.NDArray[np.generic]]) -> _FloatArray:
        """Score feature columns (each ``[n, 1]``); return the churn column as float64."""
        (probabilities,) = self._session.run([PROBABILITY_OUTPUT], columns)
        return np.asarray(probabilities, dtype=np.float64)[:, 1]

    def probabilities(self, records: Sequence[CustomerRecord]) -> _FloatArray:
        """Score records in one Runtime call."""
        n = len(records)
        columns: dict[str, npt.NDArray[np.generic]] = {}
        for name in self._categorical:
            values = list(map(self._getters[name], records))
            columns[name] = np.array(values, dtype=object).reshape(n, 1)
        for name in self._numeric:
            column = np.fromiter(map(self._getters[name], records), dtype=np.float32, count=n)
            columns[name] = column.reshape(n, 1)
        return self.run_columns(columns)


@dataclass(frozen=True)
class Model:
    """A verified model, ready to score."""

    version: str
    sha256: str
    threshold: float
    metadata: dict[str, str]
    onnx: OnnxScorer
    linear: LinearScorer | None
    types: RequestTypes = field(repr=False)

    @property
    def contract(self) -> Contract:
        """The feature contract the artifact embeds: the API it serves."""
        return self.types.contract

    @property
    def scorer(self) -> str:
        """Which path scores requests: ``linear`` or ``onnxruntime``."""
        return "linear" if self.linear is not None else "onnxruntime"

    def probability(self, record: CustomerRecord) -> float:
        """Churn probability of one record."""
        if self.linear is not None:
            return self.linear.probability(record)
        return float(self.onnx.probabilities([record])[0])

    def probabilities(self, records: Sequence[CustomerRecord]) -> _FloatArray:
        """Churn probabilities of many records, vectorized, in order."""
        if self.linear is not None:
            return self.linear.probabilities(records)
        return self.onnx.probabilities(records)


def _check_io(session: ort.InferenceSession, types: RequestTypes) -> None:
    inputs = {i.name: i for i in session.get_inputs()}
    if set(inputs) != set(types.features):
        missing = sorted(set(types.features) - set(inputs))
        extra = sorted(set(inputs) - set(types.features))
        raise ModelLoadError(
            "contract_mismatch",
            f"model inputs differ from the contract: missing {missing}, extra {extra}",
        )
    for name, node in inputs.items():
        want = "tensor(string)" if name in types.categorical else "tensor(float)"
        if node.type != want or len(node.shape) != 2 or node.shape[1] != 1:
            raise ModelLoadError(
                "contract_mismatch",
                f"input {name!r} is {node.type} {node.shape}, the contract needs {want} [None, 1]",
            )
    outputs = {o.name: o for o in session.get_outputs()}
    output = outputs.get(PROBABILITY_OUTPUT)
    if output is None or len(output.shape) != 2 or output.shape[1] != 2:
        raise ModelLoadError(
            "contract_mismatch", f"model has no output {PROBABILITY_OUTPUT!r} of shape [None, 2]"
        )


def _contract(metadata: dict[str, str]) -> Contract:
    """The feature contract the artifact embeds; refuse it when absent or invalid."""
    stored = metadata.get(CONTRACT_METADATA_KEY)
    if stored is None:
        raise ModelLoadError(
            "contract_mismatch", f"model metadata has no {CONTRACT_METADATA_KEY!r}"
        )
    try:
        return contract_from_json(stored, CONTRACT_METADATA_KEY)
    except ContractError as exc:
        raise ModelLoadError("contract_mismatch", str(exc)) from None


def _threshold(metadata: dict[str, str]) -> float:
    raw = metadata.get(THRESHOLD_METADATA_KEY)
    try:
        value = float(raw) if raw is not None else math.nan
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise ModelLoadError(
            "invalid_model",
            f"metadata {THRESHOLD_METADATA_KEY!r}={raw!r} is not a number in [0, 1]",
        )
    return value


def model_from_bytes(
    data: bytes,
    sha256: str,
    version: str,
    *,
    fast_path: bool = True,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Model:
    """Verify ``data`` against the pin and its own contract; return a warmed ``Model``."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelLoadError(
            "digest_mismatch", f"artifact sha256 is {digest}, the pin says {sha256}"
        )
    options = ort.SessionOptions()
    # One thread: requests are small, and a pool per worker only fights the server for the cores.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own untyped errors for any bad graph
        raise ModelLoadError(
            "invalid_model", f"ONNX Runtime cannot open the artifact: {exc}"
        ) from None
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    types = request_types(_contract(metadata), max_batch)
    _check_io(session, types)
    threshold = _threshold(metadata)
    onnx = OnnxScorer(session, types)
    try:
        linear = fit_linear(onnx.run_columns, contract=types.contract) if fast_path else None
    except Exception as exc:  # a graph that loads but cannot score contract rows
        raise ModelLoadError(
            "invalid_model", f"the model cannot score contract rows: {exc}"
        ) from None
    return Model(version, sha256, threshold, metadata, onnx, linear, types)


def load_model(
    uri: str, sha256: str, version: str, *, max_batch: int = DEFAULT_MAX_BATCH
) -> tuple[Model, float]:
    """Fetch, verify and warm the pinned model; return it and the seconds it took."""
    started = time.perf_counter()
    model = model_from_bytes(fetch(uri), sha256, version, max_batch=max_batch)
    return model, time.perf_counter() - started
