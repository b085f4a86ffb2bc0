"""The training profile: what the model's data looked like, shipped beside the artifact.

Per feature, the bins and shares the monitor compares live traffic with (PSI):
ten quantile bins with open ends for numbers, level shares for categories and
booleans; and the same for the model's probabilities. Written at registration
as canonical JSON (same data, same bytes) at
``churn-model/sha256/<model sha256>.profile.json``, beside the artifact it
describes, so the monitor finds it from the pin alone.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from churn_contract import Contract, builtin_contract

from churn_workflows import PipelineError
from churn_workflows.storage import exists, read_bytes, write_bytes

__all__ = [
    "PROBABILITY_EDGES",
    "profile_bytes",
    "profile_uri",
    "psi_against",
    "publish_profile",
    "read_profile",
    "training_profile",
]

_BINS: Final = 10
_EPSILON: Final = 1e-4
PROBABILITY_EDGES: Final = [i / _BINS for i in range(_BINS + 1)]


def profile_uri(bucket_uri: str, model_sha256: str) -> str:
    """Where the profile of the model with ``model_sha256`` lives."""
    return f"{bucket_uri.rstrip('/')}/churn-model/sha256/{model_sha256}.profile.json"


def _numeric(values: npt.NDArray[np.float64]) -> dict[str, Any]:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, _BINS + 1)))
    inner = [float(e) for e in edges[1:-1]]
    counts = np.histogram(values, [-math.inf, *inner, math.inf])[0]
    return {"kind": "numeric", "edges": inner, "shares": [float(c) / len(values) for c in counts]}


def _levels(values: pd.Series[Any]) -> dict[str, Any]:
    shares = values.astype(str).str.lower().value_counts(normalize=True).sort_index()
    return {"kind": "levels", "shares": {str(k): float(v) for k, v in shares.items()}}


def training_profile(
    frame: pd.DataFrame,
    probabilities: npt.NDArray[np.float64],
    contract: Contract | None = None,
) -> dict[str, Any]:
    """The profile of ``frame`` (``contract``'s features) and the model's ``probabilities``."""
    if frame.empty:
        raise PipelineError("cannot profile an empty frame")
    features: dict[str, Any] = {}
    for name, feature in (contract or builtin_contract()).features.items():
        column = frame[name]
        if feature.type in {"category", "bool"}:
            features[name] = _levels(column)
        else:
            features[name] = _numeric(column.to_numpy(dtype=float))
    counts = np.histogram(probabilities, PROBABILITY_EDGES)[0]
    return {
        "rows": len(frame),
        "features": features,
        "probability": {
            "kind": "fixed",
            "edges": PROBABILITY_EDGES[1:-1],
            "shares": [float(c) / len(probabilities) for c in counts],
        },
    }


def profile_bytes(profile: dict[str, Any]) -> bytes:
    """Canonical JSON: the same profile is always the same bytes."""
    return json.dumps(profile, sort_keys=True, separators=(",", ":")).encode()


def publish_profile(profile: dict[str, Any], bucket_uri: str, model_sha256: str) -> str:
    """Write the profile beside the artifact (idempotent); return its URI."""
    uri = profile_uri(bucket_uri, model_sha256)
    data = profile_bytes(profile)
    if exists(uri) and read_bytes(uri) == data:
        return uri
    return write_bytes(uri, data)


def read_profile(bucket_uri: str, model_sha256: str) -> dict[str, Any] | None:
    """The profile of a model, or None when none was published (a model older than profiles)."""
    uri = profile_uri(bucket_uri, model_sha256)
    if not exists(uri):
        return None
    profile: dict[str, Any] = json.loads(read_bytes(uri))
    return profile


def _psi(expected: npt.NDArray[np.float64], actual: npt.NDArray[np.float64]) -> float:
    expected = np.clip(expected, _EPSILON, None)
    actual = np.clip(actual, _EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi_against(reference: dict[str, Any], values: pd.Series[Any]) -> float:
    """PSI of ``values`` against one profile entry (a feature's, or the probability's)."""
    values = values.dropna()
    if values.empty:
        return math.nan
    if reference["kind"] == "levels":
        shares: dict[str, float] = reference["shares"]
        seen = values.astype(str).str.lower().value_counts(normalize=True)
        levels = sorted(set(shares) | set(seen.index))
        expected = np.array([shares.get(level, 0.0) for level in levels])
        actual = np.array([float(seen.get(level, 0.0)) for level in levels])
        return _psi(expected, actual)
    edges = [-math.inf, *reference["edges"], math.inf]
    counts = np.histogram(values.to_numpy(dtype=float), edges)[0]
    return _psi(np.array(reference["shares"]), counts / len(values))
