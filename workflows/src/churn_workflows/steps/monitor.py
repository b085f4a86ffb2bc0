"""churn-monitor's step: live quality and drift per model version and day, and the retrain call.

Reads the captured predictions of the last ``--days`` days joined with their
outcomes, and computes per model version and prediction day: predictions,
labelled count and coverage, ROC AUC, PR AUC, Brier, accuracy at the model's
threshold, prediction PSI and per-feature PSI against the model's own training
profile (``churn-model/sha256/<sha>.profile.json``). The same numbers over the
whole window are written as ``window.<metric>``; churn-api exposes those as
``churn_model_live_*`` gauges for the dashboard and the alerts.

Retraining follows the data: when the window's ROC AUC is below the floor on
enough labels, or a feature's or the predictions' PSI is above the limit, the
step exports the labelled captures to a content-addressed Parquet snapshot and
writes ``retrain`` = true with the reason and the snapshot's URI and digest;
the workflow then submits ``churn-train`` on that snapshot.

Champion vs challenger: captures scored by a pinned shadow model as well carry
its probability, so on the labelled ones both models are measured on the very
same traffic. Per (serving version, shadow version) over the window: labelled
rows, days covered, ROC AUC, PR AUC and Brier of both, and the paired DeLong
95 % interval of the shadow's ROC AUC gain (the gate's own ``paired_auc_delta``).
They are stored as ``ChampionChallenger`` results (churn_workflows.champion_challenger),
which churn-api's gauges ignore; the promotion pull request of that shadow reads
them back.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from churn_contract import builtin_contract, feature_names
from churn_store.prediction_store import JoinedRow, MonitorResult, StoreError, open_store
from sklearn.metrics import (  # type: ignore[import-untyped]
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
)

from churn_workflows import EXIT_TRANSIENT, PipelineError, exit_code
from churn_workflows.champion_challenger import GAIN_KEYS, ChampionChallenger
from churn_workflows.steps.evaluate import paired_auc_delta
from churn_workflows.steps.profile import psi_against, read_profile
from churn_workflows.storage import exists, write_bytes

# The default contract's features: what the captured requests of the churn family hold.
FEATURES = feature_names(builtin_contract())

__all__ = [
    "MonitorConfig",
    "MonitorReport",
    "captures_frame",
    "champion_challenger",
    "main",
    "run_monitor",
]


@dataclass(frozen=True)
class MonitorConfig:
    """Where to read and write, the window, and the thresholds that start a retrain."""

    store_url: str
    models_uri: str
    data_uri: str
    days: int = 30
    min_labels: int = 200
    min_roc_auc: float = 0.70
    max_psi: float = 0.2


def champion_challenger(frame: pd.DataFrame, computed_on: date) -> list[ChampionChallenger]:
    """Per (serving version, shadow version): both models on the labelled captures both scored."""
    if not len(frame):
        return []
    both = frame[
        frame["churned"].notna()
        & frame["shadow_probability"].notna()
        & frame["shadow_model_version"].notna()
    ]
    found = []
    for (serving, shadow), group in both.groupby(
        ["model_version", "shadow_model_version"], sort=True
    ):
        truth = group["churned"].astype(bool).to_numpy()
        p_serving = group["probability"].to_numpy(dtype=float)
        p_shadow = group["shadow_probability"].to_numpy(dtype=float)
        try:
            paired = paired_auc_delta(truth, p_shadow, p_serving)
            gain: dict[str, float] | None = {k: paired[k] for k in GAIN_KEYS}
        except PipelineError:  # fewer than 2 of a class: no interval, the rest still counts
            gain = None
        days = sorted(set(group["day"]))
        found.append(
            ChampionChallenger(
                computed_on=computed_on,
                serving_version=str(serving),
                shadow_version=str(shadow),
                labelled=len(group),
                first_day=days[0],
                last_day=days[-1],
                days=len(days),
                serving=_scores(truth, p_serving),
                shadow=_scores(truth, p_shadow),
                gain=gain,
            )
        )
    return found


def _scores(truth: np.ndarray[Any, Any], p: np.ndarray[Any, Any]) -> dict[str, float | None]:
    two_classes = 0 < truth.sum() < len(truth)
    return {
        "roc_auc": float(roc_auc_score(truth, p)) if two_classes else None,
        "pr_auc": float(average_precision_score(truth, p)) if two_classes else None,
        "brier": float(brier_score_loss(truth, p)),
    }


@dataclass
class MonitorReport:
    """What the monitor found, and whether it asks for a retrain."""

    window: dict[str, dict[str, float | None]] = field(default_factory=dict)
    feature_psi: dict[str, dict[str, float]] = field(default_factory=dict)
    champion_challenger: list[ChampionChallenger] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    snapshot_uri: str = ""
    snapshot_sha256: str = ""
    snapshot_rows: int = 0
    rows: int = 0
    seconds: float = 0.0

    @property
    def retrain(self) -> bool:
        """True when a threshold was crossed and there is data to train on."""
        return bool(self.reasons) and bool(self.snapshot_uri)


def captures_frame(rows: Iterable[JoinedRow]) -> pd.DataFrame:
    """The joined rows as a frame: one column per feature plus the capture's columns."""
    columns: dict[str, list[Any]] = {
        k: []
        for k in (
            "prediction_id",
            "predicted_at",
            "model_version",
            "model_sha256",
            "probability",
            "churn",
            "churned",
            "shadow_probability",
            "shadow_model_version",
        )
    }
    features: list[bytes] = []
    for r in rows:
        columns["prediction_id"].append(r.prediction_id)
        columns["predicted_at"].append(r.predicted_at)
        columns["model_version"].append(r.model_version)
        columns["model_sha256"].append(r.model_sha256)
        columns["probability"].append(r.probability)
        columns["churn"].append(r.churn)
        columns["churned"].append(r.churned)
        columns["shadow_probability"].append(r.shadow_probability)
        columns["shadow_model_version"].append(r.shadow_model_version)
        features.append(r.features.encode())
    frame = pd.DataFrame(columns)
    decoded = msgspec.json.decode(b"[" + b",".join(features) + b"]") if features else []
    values = pd.DataFrame(decoded, columns=list(FEATURES))
    frame = pd.concat([frame, values], axis=1)
    frame["predicted_at"] = pd.to_datetime(frame["predicted_at"], utc=True)
    frame["day"] = frame["predicted_at"].dt.date
    return frame


def _quality(group: pd.DataFrame, profile: dict[str, Any] | None) -> dict[str, float | None]:
    labelled = group[group["churned"].notna()]
    numbers: dict[str, float | None] = {
        "predictions": float(len(group)),
        "labelled": float(len(labelled)),
        "label_coverage": len(labelled) / len(group) if len(group) else None,
        "roc_auc": None,
        "pr_auc": None,
        "brier": None,
        "accuracy": None,
        "prediction_psi": None,
        "max_feature_psi": None,
    }
    if len(labelled):
        truth = labelled["churned"].astype(bool).to_numpy()
        p = labelled["probability"].to_numpy(dtype=float)
        numbers["brier"] = float(brier_score_loss(truth, p))
        numbers["accuracy"] = float(np.mean(labelled["churn"].astype(bool).to_numpy() == truth))
        if 0 < truth.sum() < len(truth):
            numbers["roc_auc"] = float(roc_auc_score(truth, p))
            numbers["pr_auc"] = float(average_precision_score(truth, p))
    if profile is not None:
        numbers["prediction_psi"] = psi_against(profile["probability"], group["probability"])
        psis = [psi_against(profile["features"][n], group[n]) for n in profile["features"]]
        numbers["max_feature_psi"] = float(np.nanmax(psis)) if psis else None
    return numbers


def _feature_psi(group: pd.DataFrame, profile: dict[str, Any] | None) -> dict[str, float]:
    if profile is None:
        return {}
    return {n: round(psi_against(s, group[n]), 6) for n, s in sorted(profile["features"].items())}


def _results(
    day: date, version: str, numbers: dict[str, float | None], prefix: str = ""
) -> list[MonitorResult]:
    return [MonitorResult(day, version, prefix + k, v) for k, v in numbers.items()]


def export_snapshot(frame: pd.DataFrame, data_uri: str) -> tuple[str, str, int]:
    """The labelled captures as a training table, content-addressed; (uri, sha256, rows)."""
    labelled = frame[frame["churned"].notna()].sort_values("prediction_id")
    table = labelled[list(FEATURES)].copy()
    table.insert(0, "customer_id", labelled["prediction_id"].to_numpy())
    table["churn"] = labelled["churned"].astype(bool).to_numpy()
    buffer = io.BytesIO()
    table.reset_index(drop=True).to_parquet(buffer, index=False)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    uri = f"{data_uri.rstrip('/')}/snapshots/captures-{digest}.parquet"
    if not exists(uri):
        write_bytes(uri, data)
    return uri, digest, len(table)


def run_monitor(config: MonitorConfig, now: datetime | None = None) -> MonitorReport:
    """Compute, store the numbers, decide; the report says what and why."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    store = open_store(config.store_url)
    try:
        store.migrate()
        frame = captures_frame(store.joined(now - timedelta(days=config.days), now))
        report = MonitorReport(rows=len(frame))
        results: list[MonitorResult] = []
        for version, group in frame.groupby("model_version", sort=True):
            sha = str(group["model_sha256"].mode().iloc[0])
            profile = read_profile(config.models_uri, sha)
            for day, daily in group.groupby("day", sort=True):
                results += _results(day, str(version), _quality(daily, profile))
            window = _quality(group, profile)
            results += _results(now.date(), str(version), window, prefix="window.")
            report.window[str(version)] = window
            report.feature_psi[str(version)] = _feature_psi(group, profile)
            report.reasons += _reasons(str(version), window, report.feature_psi[str(version)],
                                       config)  # fmt: skip
        report.champion_challenger = champion_challenger(frame, now.date())
        for comparison in report.champion_challenger:
            results += comparison.to_results()
        store.write_monitor_results(results)
    finally:
        store.close()
    if report.reasons:
        labelled = int(frame["churned"].notna().sum()) if len(frame) else 0
        if labelled >= config.min_labels:
            uri, digest, rows = export_snapshot(frame, config.data_uri)
            report.snapshot_uri, report.snapshot_sha256, report.snapshot_rows = uri, digest, rows
        else:
            report.reasons.append(f"no retrain: only {labelled} labelled captures to train on")
    report.seconds = time.perf_counter() - started
    return report


def _reasons(
    version: str, window: dict[str, float | None], psi: dict[str, float], config: MonitorConfig
) -> list[str]:
    reasons = []
    auc, labelled = window["roc_auc"], window["labelled"] or 0
    if auc is not None and labelled >= config.min_labels and auc < config.min_roc_auc:
        reasons.append(
            f"version {version}: live ROC AUC {auc:.3f} < {config.min_roc_auc} "
            f"on {int(labelled)} labels"
        )
    drifted = {n: v for n, v in psi.items() if v > config.max_psi}
    if drifted:
        listed = ", ".join(f"{n} {v:.3f}" for n, v in sorted(drifted.items()))
        reasons.append(f"version {version}: feature PSI above {config.max_psi}: {listed}")
    prediction_psi = window["prediction_psi"]
    if prediction_psi is not None and prediction_psi > config.max_psi:
        reasons.append(f"version {version}: prediction PSI {prediction_psi:.3f} > {config.max_psi}")
    return reasons


def summary_lines(report: MonitorReport) -> list[str]:
    """Human lines: one per model version, one per shadow beside it, then the decision."""
    lines = []
    for version, w in sorted(report.window.items()):

        def show(name: str, w: dict[str, float | None] = w) -> str:
            value = w.get(name)
            return "n/a" if value is None else f"{value:.3f}"

        lines.append(
            f"version {version}: {int(w['predictions'] or 0)} predictions, "
            f"{int(w['labelled'] or 0)} labelled ({show('label_coverage')}), "
            f"ROC AUC {show('roc_auc')}, PR AUC {show('pr_auc')}, Brier {show('brier')}, "
            f"accuracy {show('accuracy')}, prediction PSI {show('prediction_psi')}, "
            f"max feature PSI {show('max_feature_psi')}"
        )
    lines += [comparison.summary() for comparison in report.champion_challenger]
    if report.retrain:
        lines.append(
            f"retrain: {'; '.join(report.reasons)} -> {report.snapshot_uri} "
            f"({report.snapshot_rows} rows)"
        )
    else:
        lines.append("no retrain" + (f": {'; '.join(report.reasons)}" if report.reasons else ""))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Argo's monitor step: write the numbers, and the retrain decision into --output."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--store-url",
        default=os.environ.get("CHURN_CAPTURE_URL"),
        help="the prediction store (default: $CHURN_CAPTURE_URL, from a Secret in the cluster)",
    )
    parser.add_argument("--models", required=True, help="s3://churn-<env>-models or file://")
    parser.add_argument("--data", required=True, help="s3://churn-<env>-data or file://")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--min-labels", type=int, default=200)
    parser.add_argument("--min-roc-auc", type=float, default=0.70)
    parser.add_argument("--max-psi", type=float, default=0.2)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    if not args.store_url:
        parser.error("--store-url or CHURN_CAPTURE_URL is required")
    config = MonitorConfig(
        args.store_url,
        args.models,
        args.data,
        args.days,
        args.min_labels,
        args.min_roc_auc,
        args.max_psi,
    )
    try:
        report = run_monitor(config)
    except StoreError as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_TRANSIENT
    except PipelineError as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return exit_code(exc)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "retrain").write_text("true" if report.retrain else "false")
    (args.output / "reason").write_text("; ".join(report.reasons) or "none")
    (args.output / "snapshot").write_text(report.snapshot_uri)
    (args.output / "snapshot-sha256").write_text(report.snapshot_sha256)
    (args.output / "report.json").write_text(
        json.dumps(asdict(report), sort_keys=True, default=str)
    )
    for line in summary_lines(report):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
