"""Train: a sweep of scikit-learn candidates, each one an MLflow run with its ONNX export.

Steps: split the data by a hash of ``customer_id`` (so a customer is always in
the same part: train 65 %, validation 15 %, holdout 20 %), then for each
candidate fit a Pipeline (one-hot + scaling, then the classifier), choose its
decision threshold (best F1 on validation), export it to ONNX with parity
checked on the holdout, and log it all as one MLflow run: params, validation
metrics, signature, input example, the dataset as input, the git commit. In
Argo every candidate is its own pod (``withParam`` over ``candidates()``);
locally they run one after another. Seeds are fixed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import sklearn  # type: ignore[import-untyped,unused-ignore]
from churn_contract import (
    ID_COLUMN,
    LABEL,
    Contract,
    builtin_contract,
    categorical_features,
    numeric_features,
)
from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped,unused-ignore]
from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped,unused-ignore]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped,unused-ignore]
from sklearn.metrics import precision_recall_curve, roc_auc_score  # type: ignore[import-untyped,unused-ignore]
from sklearn.pipeline import Pipeline  # type: ignore[import-untyped,unused-ignore]
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # type: ignore[import-untyped,unused-ignore]
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped,unused-ignore]

from churn_workflows import PipelineError, exit_code
from churn_workflows.contracts import load_contract
from churn_workflows.steps import export
from churn_workflows.steps.export import model_frame
from churn_workflows.steps.ingest import read_dataset
from churn_workflows.tracking import connect, git_commit, mlflow, quiet_model_logging

__all__ = [
    "ONNX_ARTIFACT",
    "SEED",
    "Candidate",
    "CandidateResult",
    "Split",
    "build_pipeline",
    "candidates",
    "choose_threshold",
    "main",
    "model_frame",
    "split",
    "train_candidate",
]

SEED = 20260101
ONNX_ARTIFACT = "onnx/model.onnx"
_SKOPS_TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


@dataclass(frozen=True)
class Candidate:
    """One point of the sweep: a model family and its hyperparameters."""

    name: str
    family: str
    params: dict[str, float | int | str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The form Argo fans out over."""
        return json.dumps(
            {"name": self.name, "family": self.family, "params": self.params}, sort_keys=True
        )

    @classmethod
    def from_json(cls, text: str) -> Candidate:
        """Parse one fanned-out item."""
        data = json.loads(text)
        return cls(name=data["name"], family=data["family"], params=dict(data["params"]))


@dataclass(frozen=True)
class Split:
    """The three parts of a dataset; the holdout is the gate's, never trained on."""

    train: pd.DataFrame
    valid: pd.DataFrame
    holdout: pd.DataFrame


@dataclass(frozen=True)
class CandidateResult:
    """What a candidate's run produced: the run, its validation score and its ONNX artifact."""

    candidate: Candidate
    run_id: str
    valid_roc_auc: float
    threshold: float
    parity_max_abs_diff: float
    artifact: bytes = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """The JSON one fanned-out pod hands to the evaluate step."""
        return {
            "name": self.candidate.name,
            "run_id": self.run_id,
            "valid_roc_auc": self.valid_roc_auc,
            "threshold": self.threshold,
        }


def candidates() -> list[Candidate]:
    """The sweep: a logistic regression grid and a gradient-boosted tree ensemble."""
    sweep = [Candidate(f"logreg-c{c}", "logistic_regression", {"C": c}) for c in (0.1, 1.0, 10.0)]
    sweep += [
        Candidate(
            f"hgb-lr{lr}-leaves{leaves}",
            "hist_gradient_boosting",
            {"learning_rate": lr, "max_leaf_nodes": leaves, "max_iter": 100},
        )
        for lr, leaves in ((0.1, 15), (0.05, 31))
    ]
    return sweep


def build_pipeline(candidate: Candidate, contract: Contract | None = None) -> Pipeline:
    """One-hot the categories, scale the numbers (linear models only), then the classifier.

    Trees need no scaling, and scaling in float32 (ONNX) against float64
    (scikit-learn) would move values across split thresholds.
    """
    contract = contract or builtin_contract()
    categorical = categorical_features(contract)
    categories = [list(contract.features[name].categories or ()) for name in categorical]
    prepare = ColumnTransformer(
        [
            (
                "categories",
                OneHotEncoder(categories=categories, handle_unknown="ignore"),
                list(categorical),
            ),
            (
                "numbers",
                StandardScaler() if candidate.family == "logistic_regression" else "passthrough",
                list(numeric_features(contract)),
            ),
        ],
        sparse_threshold=0.0,
    )
    classifier: Any
    if candidate.family == "logistic_regression":
        classifier = LogisticRegression(
            C=float(candidate.params["C"]), max_iter=1000, random_state=SEED
        )
    elif candidate.family == "hist_gradient_boosting":
        classifier = HistGradientBoostingClassifier(
            learning_rate=float(candidate.params["learning_rate"]),
            max_leaf_nodes=int(candidate.params["max_leaf_nodes"]),
            max_iter=int(candidate.params["max_iter"]),
            early_stopping=False,
            random_state=SEED,
        )
    else:
        raise PipelineError(
            f"candidate {candidate.name!r}: unknown model family {candidate.family!r}"
        )
    return Pipeline([("prepare", prepare), ("classifier", classifier)])


def split(frame: pd.DataFrame) -> Split:
    """Split by a stable hash of ``customer_id``: a customer always lands in the same part."""
    bucket = pd.util.hash_pandas_object(frame[ID_COLUMN].astype(str), index=False).to_numpy() % 100
    return Split(
        train=frame[bucket >= 35],
        valid=frame[(bucket >= 20) & (bucket < 35)],
        holdout=frame[bucket < 20],
    )


def choose_threshold(labels: np.ndarray[Any, Any], probabilities: np.ndarray[Any, Any]) -> float:
    """The probability cut that maximises F1."""
    precision, recall, cuts = precision_recall_curve(labels, probabilities)
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros_like(precision),
        where=(precision + recall) > 0,
    )
    return float(np.round(cuts[int(np.argmax(f1[:-1]))], 6))


def train_candidate(
    candidate: Candidate,
    parts: Split,
    *,
    data_uri: str,
    data_sha256: str,
    commit: str,
    threads: int = 1,
    contract: Contract | None = None,
) -> CandidateResult:
    """Fit, export and log one candidate as an MLflow run (mlflow must be connected).

    ``threads`` caps the BLAS/OpenMP pools: one pod per candidate, one core
    each, and no spinning threads fighting over a busy machine. ``contract``
    (default: the built-in ``churn``) names the features and is embedded in the
    artifact.
    """
    contract = contract or builtin_contract()
    labels = parts.train[LABEL].astype(bool).to_numpy()
    with quiet_model_logging(), mlflow.start_run(run_name=candidate.name) as run:
        mlflow.set_tags(
            {
                "mlflow.source.git.commit": commit,
                "churn.data_sha256": data_sha256,
                "churn.family": candidate.family,
            }
        )
        mlflow.log_params({"family": candidate.family, **candidate.params, "seed": SEED})
        dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
            parts.train, source=data_uri, name="train", targets=LABEL, digest=data_sha256[:36]
        )
        mlflow.log_input(dataset, context="training")
        mlflow.set_tag("churn.contract", contract.name)
        pipeline = build_pipeline(candidate, contract)
        train_x = model_frame(parts.train, contract)
        with threadpool_limits(limits=threads):
            pipeline.fit(train_x, labels)
        valid_labels = parts.valid[LABEL].astype(bool).to_numpy()
        valid_p = pipeline.predict_proba(model_frame(parts.valid, contract))[:, 1]
        auc = float(roc_auc_score(valid_labels, valid_p))
        threshold = choose_threshold(valid_labels, valid_p)
        artifact = export.export_onnx(
            pipeline,
            {"churn.threshold": str(threshold)},
            contract,
        )
        diff = export.parity(pipeline, artifact, parts.holdout)
        mlflow.log_metrics(
            {"valid_roc_auc": auc, "threshold": threshold, "onnx_parity_max_abs_diff": diff}
        )
        example = train_x.head(5)
        signature = mlflow.models.infer_signature(example, pipeline.predict_proba(example)[:, 1])
        mlflow.sklearn.log_model(
            pipeline,
            name="sklearn",
            signature=signature,
            input_example=example,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            # mlflow saves with skops; this type is ours, written by this very run.
            skops_trusted_types=_SKOPS_TRUSTED,
        )
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / Path(ONNX_ARTIFACT).name
            path.write_bytes(artifact)
            mlflow.log_artifact(str(path), artifact_path=str(Path(ONNX_ARTIFACT).parent))
    return CandidateResult(candidate, run.info.run_id, auc, threshold, diff, artifact)


def main(argv: Sequence[str] | None = None) -> int:
    """List the sweep (``--list``) or train one candidate (Argo's fanned-out train pod)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--list", type=Path, help="write the sweep as a JSON list here")
    parser.add_argument("--candidate", help="one item of the sweep, as JSON")
    parser.add_argument("--data", help="the conformed dataset (validate's output)")
    parser.add_argument("--contract", default="churn", help="a built-in name or a URI (.yaml)")
    parser.add_argument("--data-uri", help="where the data came from (lineage)")
    parser.add_argument("--data-sha256", help="sha256 of the source's bytes (not of a copy)")
    parser.add_argument("--tracking-uri")
    parser.add_argument("--result", type=Path, help="write the run's summary JSON here")
    args = parser.parse_args(argv)
    if args.list:
        args.list.parent.mkdir(parents=True, exist_ok=True)
        args.list.write_text(json.dumps([json.loads(c.to_json()) for c in candidates()]))
        return 0
    if not (args.candidate and args.data and args.tracking_uri and args.result):
        parser.error("--candidate, --data, --tracking-uri and --result are required to train")
    try:
        connect(args.tracking_uri)
        data = read_dataset(args.data)
        result = train_candidate(
            Candidate.from_json(args.candidate),
            split(data.frame),
            data_uri=args.data_uri or args.data,
            data_sha256=args.data_sha256 or data.sha256,
            commit=git_commit(),
            contract=load_contract(args.contract),
        )
    except PipelineError as exc:
        print(f"train: {exc}", file=sys.stderr)
        return exit_code(exc)
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(result.summary(), sort_keys=True))
    print(json.dumps(result.summary(), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
