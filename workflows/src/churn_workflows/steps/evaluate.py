"""Evaluate and gate: score the best candidate's ONNX artifact against the running model.

Steps: pick the candidate with the best validation ROC AUC, score its ONNX
artifact with ONNX Runtime on the fixed holdout (ROC AUC, PR AUC, F1 at its
threshold, Brier score, overall and per ``contract_type``), fetch the model the
target environment runs (its pin in Git; the bootstrap pin means none), score it
on the same holdout, and apply the gate: absolute floors, plus a minimum ROC AUC
improvement over the running model. A failed gate is a decision, not an error:
the run ends "not promoted" with the reasons.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_auc_score  # type: ignore[import-untyped,unused-ignore]

from churn_workflows import PipelineError, exit_code
from churn_workflows.pin import Pin
from churn_workflows.steps.export import onnx_probabilities, sha256
from churn_workflows.steps.ingest import read_dataset
from churn_workflows.steps.promote import read_target_pin
from churn_workflows.steps.synthetic import LABEL
from churn_workflows.steps.train import ONNX_ARTIFACT, split
from churn_workflows.storage import read_bytes
from churn_workflows.tracking import connect, mlflow

__all__ = [
    "Evaluation",
    "GateConfig",
    "evaluate",
    "fetch_running_model",
    "main",
    "score",
    "select_best",
    "threshold_of",
]

SEGMENT = "contract_type"


@dataclass(frozen=True)
class GateConfig:
    """The gate: floors every candidate must clear, and the gain over the running model."""

    min_roc_auc: float = 0.70
    min_pr_auc: float = 0.50
    max_brier: float = 0.25
    min_improvement: float = 0.0


@dataclass
class Evaluation:
    """The candidate against the running model, and the gate's decision."""

    candidate: dict[str, Any]
    running: dict[str, Any] | None
    running_pin: dict[str, str] | None
    gate: GateConfig
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether the candidate may be promoted."""
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (kept as the evaluate step's artifact)."""
        return {**asdict(self), "passed": self.passed}

    def to_markdown(self) -> str:
        """Candidate vs running model, metric by metric: the PR's evidence."""
        running = self.running or {}
        pin = self.running_pin
        lines = [
            f"### Gate: {'passed' if self.passed else 'NOT PROMOTED'}",
            "",
            "Running model: "
            + (
                f"version {pin['version']} (`{pin['sha256'][:12]}`)"
                if pin
                else "none (bootstrap pin)"
            ),
            "",
            "| metric | candidate | running | delta |",
            "|---|---:|---:|---:|",
        ]
        for name in ("roc_auc", "pr_auc", "f1", "brier"):
            cand = self.candidate[name]
            run = running.get(name)
            delta = "-" if run is None else f"{cand - run:+.4f}"
            lines.append(
                f"| {name} | {cand:.4f} | {'-' if run is None else f'{run:.4f}'} | {delta} |"
            )
        for segment, values in sorted(self.candidate["segments"].items()):
            run = (running.get("segments") or {}).get(segment, {}).get("roc_auc")
            cand = values["roc_auc"]
            lines.append(
                f"| roc_auc[{SEGMENT}={segment}] | {cand:.4f} | "
                + ("- | - |" if run is None else f"{run:.4f} | {cand - run:+.4f} |")
            )
        gate = self.gate
        lines += [
            "",
            f"Floors: ROC AUC >= {gate.min_roc_auc}, PR AUC >= {gate.min_pr_auc}, "
            f"Brier <= {gate.max_brier}; improvement over running >= {gate.min_improvement}.",
        ]
        lines += [f"- {reason}" for reason in self.reasons]
        return "\n".join(lines) + "\n"


def _metrics(
    labels: np.ndarray[Any, Any], p: np.ndarray[Any, Any], threshold: float
) -> dict[str, float]:
    predicted = p >= threshold
    both = len(np.unique(labels)) == 2
    return {
        "roc_auc": float(roc_auc_score(labels, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(labels, p)) if both else float("nan"),
        "f1": float(f1_score(labels, predicted, zero_division=0.0)),
        "brier": float(brier_score_loss(labels, p)),
        "rows": float(len(labels)),
    }


def threshold_of(artifact: bytes) -> float:
    """The decision threshold stored in the artifact (``churn.threshold``)."""
    props = {p.key: p.value for p in onnx.load_from_string(artifact).metadata_props}
    try:
        return float(props["churn.threshold"])
    except (KeyError, ValueError):
        raise PipelineError("the ONNX artifact has no numeric churn.threshold metadata") from None


def score(artifact: bytes, holdout: pd.DataFrame) -> dict[str, Any]:
    """Metrics of ``artifact`` on ``holdout``, overall and per ``contract_type``."""
    threshold = threshold_of(artifact)
    p = onnx_probabilities(artifact, holdout)
    labels = holdout[LABEL].astype(bool).to_numpy()
    result: dict[str, Any] = {**_metrics(labels, p, threshold), "threshold": threshold}
    result["segments"] = {
        str(segment): _metrics(labels[mask], p[mask], threshold)
        for segment in sorted(holdout[SEGMENT].astype(str).unique())
        if (mask := (holdout[SEGMENT].astype(str) == segment).to_numpy()).any()
    }
    return result


def select_best(results: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The candidate with the best validation ROC AUC (ties: the first name)."""
    if not results:
        raise PipelineError("no candidate finished training")
    return sorted(results, key=lambda r: (-float(r["valid_roc_auc"]), str(r["name"])))[0]


def fetch_running_model(pin: Pin) -> bytes | None:
    """The artifact the pin names, checked against its sha256; None for the bootstrap pin."""
    if pin.is_bootstrap:
        return None
    artifact = read_bytes(pin.uri)
    if sha256(artifact) != pin.sha256:
        raise PipelineError(
            f"{pin.uri}: sha256 {sha256(artifact)} differs from the pinned {pin.sha256}"
        )
    return artifact


def evaluate(
    artifact: bytes,
    holdout: pd.DataFrame,
    *,
    running_pin: Pin,
    gate: GateConfig,
    candidate_name: str = "candidate",
) -> Evaluation:
    """Score the candidate and the running model on ``holdout``; decide the gate."""
    candidate = {"name": candidate_name, **score(artifact, holdout)}
    running_artifact = fetch_running_model(running_pin)
    running = None
    if running_artifact is not None:
        try:
            running = score(running_artifact, holdout)
        except PipelineError:
            raise
        except Exception as exc:  # the running model may predate today's contract
            raise PipelineError(
                f"{running_pin.uri}: cannot score the running model: {exc}"
            ) from None
    result = Evaluation(
        candidate=candidate,
        running=running,
        running_pin=None if running_pin.is_bootstrap else asdict(running_pin),
        gate=gate,
    )
    checks = [
        ("ROC AUC", candidate["roc_auc"], gate.min_roc_auc, True),
        ("PR AUC", candidate["pr_auc"], gate.min_pr_auc, True),
        ("Brier score", candidate["brier"], gate.max_brier, False),
    ]
    for label, value, limit, at_least in checks:
        ok = value >= limit if at_least else value <= limit
        if not ok or np.isnan(value):
            result.reasons.append(
                f"{label} {value:.4f} "
                f"{'below the floor' if at_least else 'above the ceiling'} {limit}"
            )
    if running is not None:
        gain = candidate["roc_auc"] - running["roc_auc"]
        if gain < gate.min_improvement:
            result.reasons.append(
                f"ROC AUC gain over running version {running_pin.version} is {gain:+.4f}, "
                f"below the required {gate.min_improvement}"
            )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Pick the best candidate, evaluate it and gate it (Argo's evaluate)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", required=True, help="the train pods' summaries, a JSON list")
    parser.add_argument("--data", required=True)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--environment", required=True)
    parser.add_argument("--min-roc-auc", type=float, default=GateConfig.min_roc_auc)
    parser.add_argument("--min-pr-auc", type=float, default=GateConfig.min_pr_auc)
    parser.add_argument("--max-brier", type=float, default=GateConfig.max_brier)
    parser.add_argument("--min-improvement", type=float, default=GateConfig.min_improvement)
    parser.add_argument("--output-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        results = [json.loads(r) if isinstance(r, str) else r for r in json.loads(args.results)]
        best = select_best(results)
        connect(args.tracking_uri)
        args.output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            local = mlflow.artifacts.download_artifacts(
                run_id=str(best["run_id"]), artifact_path=ONNX_ARTIFACT, dst_path=scratch
            )
            artifact = Path(local).read_bytes()
        (args.output_dir / "model.onnx").write_bytes(artifact)
        holdout = split(read_dataset(args.data).frame).holdout
        evaluation = evaluate(
            artifact,
            holdout,
            running_pin=read_target_pin(args.environment),
            gate=GateConfig(
                args.min_roc_auc, args.min_pr_auc, args.max_brier, args.min_improvement
            ),
            candidate_name=str(best["name"]),
        )
    except PipelineError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return exit_code(exc)
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(evaluation.to_dict(), indent=2, sort_keys=True))
    (out / "evaluation.md").write_text(evaluation.to_markdown())
    (out / "promote").write_text("true" if evaluation.passed else "false")
    (out / "run-id").write_text(str(best["run_id"]))
    print(evaluation.to_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
