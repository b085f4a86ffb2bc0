"""Evaluate and gate: score the best candidate's ONNX artifact against the model that serves.

Steps: pick the candidate with the best validation ROC AUC, score its ONNX
artifact with ONNX Runtime on the fixed holdout (ROC AUC, PR AUC, F1 at its
threshold, Brier score, overall and per segment of a declared column), find the
baseline (the model the target environment serves: churn-api's ``GET /v1/model``
when a serving URL is given, else the environment's pin in Git), score it on the
same holdout, and decide:

- unchanged: the candidate's sha256 is the baseline's; nothing to promote;
- floors that respect the base rate: ROC AUC, PR AUC as a lift over the base
  rate (a random ranking's PR AUC), and a Brier skill over predicting the base
  rate for everyone;
- a real gain: the lower bound of the paired (DeLong) confidence interval of the
  ROC AUC difference must exceed ``min_improvement``, so ties and noise do not
  promote;
- no segment of the declared column loses more than ``max_segment_drop`` ROC AUC.

The comparison and the segments need both models to read the same holdout the
same way, so they need the same feature contract. When the serving model embeds
another contract than the candidate (their digests differ: it predates a
contract change), it is not scored at all and the floors alone decide; the
evidence says so, naming both digests.

A failed gate is a decision, not an error: the run ends "not promoted" with
the reasons, and the evidence table goes into the PR body.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from scipy.stats import norm, rankdata  # type: ignore[import-untyped,unused-ignore]
from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_auc_score  # type: ignore[import-untyped,unused-ignore]

from churn_workflows import PipelineError, Unreachable, exit_code
from churn_workflows.lineage import contract_sha256
from churn_workflows.pin import Pin, pin_path
from churn_workflows.steps.export import artifact_contract, onnx_probabilities, sha256
from churn_workflows.steps.ingest import read_dataset
from churn_workflows.steps.promote import read_target_pin
from churn_workflows.steps.synthetic import LABEL
from churn_workflows.steps.train import ONNX_ARTIFACT, split
from churn_workflows.storage import read_bytes
from churn_workflows.tracking import connect, mlflow

__all__ = [
    "SEGMENT",
    "Baseline",
    "Evaluation",
    "GateConfig",
    "comparison_reasons",
    "contract_digest",
    "evaluate",
    "fetch_running_model",
    "floor_reasons",
    "main",
    "paired_auc_delta",
    "resolve_baseline",
    "score",
    "segment_reasons",
    "select_best",
    "serving_model",
    "threshold_of",
]

SEGMENT = "contract_type"


@dataclass(frozen=True)
class GateConfig:
    """The gate: floors relative to the base rate, a significant gain, no segment regression."""

    min_roc_auc: float = 0.70
    # PR AUC over the holdout's base rate (what a random ranking scores).
    min_pr_auc_lift: float = 1.25
    # 1 - Brier / base-rate Brier: the share of the base rate's error the model removes.
    min_brier_skill: float = 0.05
    # The lower confidence bound of the ROC AUC gain must exceed this.
    min_improvement: float = 0.0
    confidence: float = 0.95
    segment_column: str = SEGMENT
    max_segment_drop: float = 0.02
    # Smaller segments are shown but not gated: their AUC is mostly noise.
    min_segment_rows: int = 100


@dataclass(frozen=True)
class Baseline:
    """The model to beat and where that fact came from."""

    pin: Pin
    source: str


@dataclass
class Evaluation:
    """The candidate against the serving model, and the gate's decision."""

    candidate: dict[str, Any]
    running: dict[str, Any] | None
    running_pin: dict[str, str] | None
    gate: GateConfig
    environment: str = "dev"
    baseline_source: str = ""
    comparison: dict[str, float] | None = None
    data_sha256: str | None = None
    reference_sha256: str | None = None
    unchanged: bool = False
    reasons: list[str] = field(default_factory=list)
    note: str | None = None
    # The digests of the contracts both artifacts embed (None: the serving one embeds none).
    candidate_contract_sha256: str | None = None
    serving_contract_sha256: str | None = None

    @property
    def passed(self) -> bool:
        """Whether the candidate may be promoted."""
        return not self.reasons

    @property
    def decision(self) -> str:
        """``passed``, ``unchanged`` or ``not promoted``."""
        if self.unchanged:
            return "unchanged"
        return "passed" if self.passed else "not promoted"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (kept as the evaluate step's artifact and in the lineage record)."""
        return {**asdict(self), "passed": self.passed, "decision": self.decision}

    def to_markdown(self) -> str:
        """Serving vs candidate, interval, segments and digests: the PR's evidence."""
        running = self.running or {}
        pin, gate, cand = self.running_pin, self.gate, self.candidate
        cmp = self.comparison
        lines = [
            f"### Gate: {self.decision.upper() if self.decision != 'passed' else 'passed'}",
            "",
            "Serving model: "
            + (
                f"version {pin['version']} (`{pin['sha256'][:12]}`), "
                f"read from {self.baseline_source}"
                if pin
                else f"none ({self.baseline_source or 'bootstrap pin'})"
            )
            + (f"; {self.note}" if self.note else ""),
            "",
            f"Holdout: n = {int(cand['rows'])} rows, {int(cand['positives'])} churned "
            f"(base rate {cand['base_rate']:.4f}); data sha256 `{self.data_sha256 or '-'}`; "
            f"reference sha256 `{self.reference_sha256 or '-'}`; "
            f"candidate sha256 `{cand.get('sha256', '-')}`.",
            "",
            f"| metric | serving | candidate | delta | {gate.confidence:.0%} CI (paired DeLong) |",
            "|---|---:|---:|---:|---|",
        ]

        def row(name: str, c: float, r: float | None, ci: str = "") -> str:
            served = "-" if r is None else f"{r:.4f}"
            delta = "-" if r is None else f"{c - r:+.4f}"
            return f"| {name} | {served} | {c:.4f} | {delta} | {ci} |"

        interval = f"[{cmp['low']:+.4f}, {cmp['high']:+.4f}]" if cmp else ""
        lines.append(row("roc_auc", cand["roc_auc"], running.get("roc_auc"), interval))
        for name in ("pr_auc", "f1", "brier"):
            lines.append(row(name, cand[name], running.get(name)))
        for segment, values in sorted(cand["segments"].items()):
            served = (running.get("segments") or {}).get(segment, {}).get("roc_auc")
            label = f"roc_auc[{gate.segment_column}={segment}] (n = {int(values['rows'])})"
            lines.append(row(label, values["roc_auc"], served))
        lines += [
            "",
            f"Rules: ROC AUC >= {gate.min_roc_auc}; PR AUC >= {gate.min_pr_auc_lift} x base rate "
            f"(= {gate.min_pr_auc_lift * cand['base_rate']:.4f}); Brier skill over the base rate "
            f">= {gate.min_brier_skill} (Brier <= {_max_brier(cand['base_rate'], gate):.4f}); "
            f"lower {gate.confidence:.0%} bound of the ROC AUC gain > {gate.min_improvement}; "
            f"no {gate.segment_column} segment of >= {gate.min_segment_rows} rows loses more "
            f"than {gate.max_segment_drop} ROC AUC.",
        ]
        lines += [f"- {reason}" for reason in self.reasons]
        return "\n".join(lines) + "\n"


def _max_brier(base_rate: float, gate: GateConfig) -> float:
    return base_rate * (1 - base_rate) * (1 - gate.min_brier_skill)


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
        "positives": float(labels.sum()),
        "base_rate": float(labels.mean()) if len(labels) else float("nan"),
    }


def threshold_of(artifact: bytes) -> float:
    """The decision threshold stored in the artifact (``churn.threshold``)."""
    props = {p.key: p.value for p in onnx.load_from_string(artifact).metadata_props}
    try:
        return float(props["churn.threshold"])
    except (KeyError, ValueError):
        raise PipelineError("the ONNX artifact has no numeric churn.threshold metadata") from None


def _scored(
    artifact: bytes, holdout: pd.DataFrame, segment_column: str
) -> tuple[dict[str, Any], np.ndarray[Any, Any]]:
    if segment_column not in holdout.columns:
        raise PipelineError(f"the gate's segment column {segment_column!r} is not in the data")
    threshold = threshold_of(artifact)
    p = onnx_probabilities(artifact, holdout)
    labels = holdout[LABEL].astype(bool).to_numpy()
    result: dict[str, Any] = {
        **_metrics(labels, p, threshold),
        "threshold": threshold,
        "sha256": sha256(artifact),
    }
    column = holdout[segment_column].astype(str)
    result["segments"] = {
        str(segment): _metrics(labels[mask], p[mask], threshold)
        for segment in sorted(column.unique())
        if (mask := (column == segment).to_numpy()).any()
    }
    return result, p


def score(artifact: bytes, holdout: pd.DataFrame, segment_column: str = SEGMENT) -> dict[str, Any]:
    """Metrics of ``artifact`` on ``holdout``, overall and per segment of ``segment_column``."""
    return _scored(artifact, holdout, segment_column)[0]


def paired_auc_delta(
    labels: np.ndarray[Any, Any],
    candidate: np.ndarray[Any, Any],
    running: np.ndarray[Any, Any],
    confidence: float = 0.95,
) -> dict[str, float]:
    """ROC AUC(candidate) - ROC AUC(running) on the same rows, with DeLong's paired interval.

    DeLong, DeLong and Clarke-Pearson (1988), computed with midranks (Sun and
    Xu, 2014): exact and deterministic, so the same holdout always gives the
    same interval. Two identical score vectors give a zero-width interval at 0.
    """
    labels = labels.astype(bool)
    pos, neg = labels.sum(), (~labels).sum()
    if pos < 2 or neg < 2:
        raise PipelineError(
            f"the holdout needs at least 2 churned and 2 retained rows, has {pos} and {neg}"
        )
    v10, v01, aucs = [], [], []
    for p in (candidate, running):
        x, y = p[labels], p[~labels]
        tx, ty, tz = rankdata(x), rankdata(y), rankdata(np.concatenate([x, y]))
        aucs.append(float(tz[:pos].sum() / (pos * neg) - (pos + 1) / (2 * neg)))
        v10.append((tz[:pos] - tx) / neg)
        v01.append(1.0 - (tz[pos:] - ty) / pos)
    sx, sy = np.cov(np.array(v10)), np.cov(np.array(v01))
    variance = (sx[0, 0] + sx[1, 1] - 2 * sx[0, 1]) / pos + (
        sy[0, 0] + sy[1, 1] - 2 * sy[0, 1]
    ) / neg
    se = float(np.sqrt(max(float(variance), 0.0)))
    z = float(norm.ppf(0.5 + confidence / 2))
    delta = aucs[0] - aucs[1]
    return {
        "delta": delta,
        "low": delta - z * se,
        "high": delta + z * se,
        "se": se,
        "confidence": confidence,
        "rows": float(len(labels)),
        "positives": float(pos),
    }


def floor_reasons(candidate: Mapping[str, Any], gate: GateConfig) -> list[str]:
    """Why the candidate fails the base-rate-aware floors (empty: it clears them)."""
    base = float(candidate["base_rate"])
    reasons = []
    roc, pr, brier = candidate["roc_auc"], candidate["pr_auc"], candidate["brier"]
    if not roc >= gate.min_roc_auc:
        reasons.append(f"ROC AUC {roc:.4f} below the floor {gate.min_roc_auc}")
    if not pr >= gate.min_pr_auc_lift * base:
        reasons.append(
            f"PR AUC {pr:.4f} below {gate.min_pr_auc_lift} x the base rate {base:.4f} "
            f"(= {gate.min_pr_auc_lift * base:.4f})"
        )
    if not brier <= _max_brier(base, gate):
        reasons.append(
            f"Brier score {brier:.4f} above {_max_brier(base, gate):.4f}: less than "
            f"{gate.min_brier_skill:.0%} better than predicting the base rate "
            f"(Brier {base * (1 - base):.4f})"
        )
    return reasons


def comparison_reasons(
    comparison: Mapping[str, float], running_version: str, gate: GateConfig
) -> list[str]:
    """Why the gain over the serving model is not established (empty: it is)."""
    if comparison["low"] > gate.min_improvement:
        return []
    return [
        f"ROC AUC gain over serving version {running_version} is {comparison['delta']:+.4f}, "
        f"{comparison['confidence']:.0%} CI [{comparison['low']:+.4f}, {comparison['high']:+.4f}] "
        f"(n = {int(comparison['rows'])}): its lower bound is not above {gate.min_improvement}"
    ]


def segment_reasons(
    candidate: Mapping[str, Any], running: Mapping[str, Any], gate: GateConfig
) -> list[str]:
    """Segments of the declared column where the candidate loses more than the tolerance."""
    reasons = []
    for segment, values in sorted(candidate["segments"].items()):
        served = running.get("segments", {}).get(segment)
        if served is None or values["rows"] < gate.min_segment_rows:
            continue
        drop = served["roc_auc"] - values["roc_auc"]
        if drop > gate.max_segment_drop:
            reasons.append(
                f"ROC AUC on {gate.segment_column}={segment} (n = {int(values['rows'])}) falls "
                f"{drop:.4f} ({served['roc_auc']:.4f} -> {values['roc_auc']:.4f}), more than "
                f"the tolerated {gate.max_segment_drop}"
            )
    return reasons


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


def contract_digest(artifact: bytes) -> str | None:
    """The digest of the contract ``artifact`` embeds, as its lineage records it; None if none."""
    try:
        return contract_sha256(artifact_contract(artifact))
    except PipelineError:
        return None


def _short_digest(digest: str | None) -> str:
    # Twelve digits name a contract in the PR as they name artifacts; the JSON keeps all 64.
    return "none embedded" if digest is None else digest[:12]


def serving_model(serving_url: str, timeout: float = 10.0) -> Pin:
    """The model churn-api serves, from its ``GET /v1/model``."""
    url = serving_url.rstrip("/") + "/v1/model"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - configured URL
            body = json.loads(response.read())
        return Pin(uri=str(body["uri"]), sha256=str(body["sha256"]), version=str(body["version"]))
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise Unreachable(f"{url}: {getattr(exc, 'reason', exc)}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise PipelineError(f"{url}: not a churn-api model description ({exc})") from None


def resolve_baseline(
    environment: str,
    *,
    serving_url: str | None = None,
    repo: Path | None = None,
    base: str | None = None,
) -> Baseline:
    """The model to beat: what churn-api serves when ``serving_url`` is set, else the Git pin."""
    path = pin_path(environment)
    if serving_url:
        try:
            return Baseline(serving_model(serving_url), f"the serving churn-api at {serving_url}")
        except Unreachable as exc:
            pin = read_target_pin(environment, repo=repo, base=base)
            return Baseline(
                pin, f"the Git pin {path} (the serving churn-api did not answer: {exc})"
            )
    return Baseline(read_target_pin(environment, repo=repo, base=base), f"the Git pin {path}")


def evaluate(
    artifact: bytes,
    holdout: pd.DataFrame,
    *,
    running_pin: Pin,
    gate: GateConfig,
    candidate_name: str = "candidate",
    environment: str = "dev",
    baseline_source: str = "the Git pin",
    data_sha256: str | None = None,
    reference_sha256: str | None = None,
) -> Evaluation:
    """Score the candidate and the serving model on ``holdout``; decide the gate."""
    scored, p_candidate = _scored(artifact, holdout, gate.segment_column)
    candidate = {"name": candidate_name, **scored}
    result = Evaluation(
        candidate=candidate,
        running=None,
        running_pin=None if running_pin.is_bootstrap else asdict(running_pin),
        gate=gate,
        environment=environment,
        baseline_source=baseline_source,
        data_sha256=data_sha256,
        reference_sha256=reference_sha256,
    )
    if candidate["sha256"] == running_pin.sha256:
        result.unchanged = True
        result.running = scored
        result.reasons.append(f"unchanged: {candidate['sha256']} already serves in {environment}")
        return result
    running_artifact = fetch_running_model(running_pin)
    result.reasons += floor_reasons(candidate, gate)
    result.candidate_contract_sha256 = contract_digest(artifact)
    if running_artifact is None:
        return result
    result.serving_contract_sha256 = contract_digest(running_artifact)
    if result.serving_contract_sha256 != result.candidate_contract_sha256:
        # The holdout is in the candidate's contract: the serving model may not read it, or
        # not the same way. Comparing them would measure the contract change, not the model.
        served = _short_digest(result.serving_contract_sha256)
        result.note = (
            f"serving model uses contract `{served}`, candidate "
            f"`{_short_digest(result.candidate_contract_sha256)}`: compared on floors only"
        )
        return result
    try:
        result.running, p_running = _scored(running_artifact, holdout, gate.segment_column)
    except PipelineError:
        raise
    except Exception as exc:  # the serving model may predate today's contract
        raise PipelineError(f"{running_pin.uri}: cannot score the serving model: {exc}") from None
    labels = holdout[LABEL].astype(bool).to_numpy()
    result.comparison = paired_auc_delta(labels, p_candidate, p_running, gate.confidence)
    result.reasons += comparison_reasons(result.comparison, running_pin.version, gate)
    result.reasons += segment_reasons(candidate, result.running, gate)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Pick the best candidate, evaluate it and gate it (Argo's evaluate)."""
    gate = GateConfig()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", required=True, help="the train pods' summaries, a JSON list")
    parser.add_argument("--data", required=True)
    parser.add_argument("--data-sha256", help="sha256 of the source's bytes (ingest's digest)")
    parser.add_argument("--reference", help="the validation reference's URI (its digest is shown)")
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--environment", required=True)
    parser.add_argument(
        "--serving-url",
        default="",
        help="churn-api's base URL: the gate's baseline is what it serves",
    )
    parser.add_argument("--min-roc-auc", type=float, default=gate.min_roc_auc)
    parser.add_argument("--min-pr-auc-lift", type=float, default=gate.min_pr_auc_lift)
    parser.add_argument("--min-brier-skill", type=float, default=gate.min_brier_skill)
    parser.add_argument("--min-improvement", type=float, default=gate.min_improvement)
    parser.add_argument("--segment-column", default=gate.segment_column)
    parser.add_argument("--max-segment-drop", type=float, default=gate.max_segment_drop)
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
        baseline = resolve_baseline(args.environment, serving_url=args.serving_url or None)
        reference = (
            hashlib.sha256(read_bytes(args.reference)).hexdigest() if args.reference else None
        )
        evaluation = evaluate(
            artifact,
            holdout,
            running_pin=baseline.pin,
            gate=GateConfig(
                min_roc_auc=args.min_roc_auc,
                min_pr_auc_lift=args.min_pr_auc_lift,
                min_brier_skill=args.min_brier_skill,
                min_improvement=args.min_improvement,
                segment_column=args.segment_column,
                max_segment_drop=args.max_segment_drop,
            ),
            candidate_name=str(best["name"]),
            environment=args.environment,
            baseline_source=baseline.source,
            data_sha256=args.data_sha256,
            reference_sha256=reference,
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
    print(evaluation.reasons[0] if evaluation.unchanged else evaluation.to_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
