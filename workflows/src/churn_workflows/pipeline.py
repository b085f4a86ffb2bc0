"""The whole pipeline in-process: the same step functions, in the DAG's order.

ingest -> validate -> train (each candidate, one after another) -> evaluate and
gate -> register and publish (artifact and lineage record) -> promote. A
candidate whose sha256 already serves ends the run "unchanged" and proposes
nothing. The demo runs this; so do the tests of
bad input, end to end. Any PipelineError stops the run where it happens: the
gate's reading of the running pin comes before registration, so a broken pin,
a failed validation or an unreachable MLflow leave nothing registered and
propose nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churn_contract import Contract, builtin_contract

from churn_workflows import PipelineError
from churn_workflows.lineage import DataSource, add_pull_request, source_version
from churn_workflows.pin import Pin, PinKind
from churn_workflows.steps import evaluate as evaluate_step
from churn_workflows.steps import train as train_step
from churn_workflows.steps.ingest import read_dataset
from churn_workflows.steps.promote import Promotion, promote
from churn_workflows.steps.register import Registered, register
from churn_workflows.steps.validate import Thresholds, ValidationReport, validate, write_report
from churn_workflows.tracking import connect, git_commit

__all__ = ["PipelineConfig", "PipelineResult", "run_pipeline"]


@dataclass(frozen=True)
class PipelineConfig:
    """One run's inputs: what the WorkflowTemplate's parameters say in the cluster."""

    data_uri: str
    reference_uri: str | None
    environment: str
    tracking_uri: str
    bucket_uri: str
    repo: Path
    report_dir: Path
    base: str | None = None
    artifact_location: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    gate: evaluate_step.GateConfig = field(default_factory=evaluate_step.GateConfig)
    candidates: tuple[train_step.Candidate, ...] = field(
        default_factory=lambda: tuple(train_step.candidates())
    )
    dry_run: bool = False
    threads: int = 1
    serving_url: str | None = None
    contract: Contract = field(default_factory=builtin_contract)
    pin_as: PinKind = "model"


@dataclass
class PipelineResult:
    """What happened, for the summary."""

    rows: int = 0
    data_sha256: str = ""
    validation: ValidationReport | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    evaluation: evaluate_step.Evaluation | None = None
    registered: Registered | None = None
    promotion: Promotion | None = None
    outcome: str = ""


def run_pipeline(config: PipelineConfig, progress: Callable[[str], None] = print) -> PipelineResult:
    """Run every step; raise PipelineError on bad input, return the result otherwise."""
    result = PipelineResult()
    progress(f"ingest     {config.data_uri}")
    data = read_dataset(config.data_uri)
    result.rows, result.data_sha256 = len(data.frame), data.sha256
    reference = read_dataset(config.reference_uri) if config.reference_uri else None

    progress(
        f"validate   {result.rows} rows against the contract {config.contract.name!r}"
        + (" and the reference" if reference else "")
    )
    report = validate(
        data.frame,
        source=config.data_uri,
        contract=config.contract,
        reference=reference.frame if reference else None,
        reference_source=config.reference_uri,
        thresholds=config.thresholds,
    )
    result.validation = report
    json_path, _ = write_report(report, config.report_dir)
    if not report.passed or report.conformed is None:
        raise PipelineError(
            "validation failed (report: "
            + str(json_path)
            + "):\n  "
            + "\n  ".join(report.violations)
        )

    # Find the baseline before anything is logged: a broken pin stops the run here.
    baseline = evaluate_step.resolve_baseline(
        config.environment, serving_url=config.serving_url, repo=config.repo, base=config.base
    )
    connect(config.tracking_uri, artifact_location=config.artifact_location)
    parts = train_step.split(report.conformed)
    # The code that runs: this checkout (or GIT_COMMIT), not the GitOps clone the pins live in.
    commit = git_commit()
    artifacts: dict[str, bytes] = {}
    for number, candidate in enumerate(config.candidates, start=1):
        progress(f"train      [{number}/{len(config.candidates)}] {candidate.name}")
        trained = train_step.train_candidate(
            candidate,
            parts,
            data_uri=config.data_uri,
            data_sha256=data.sha256,
            commit=commit,
            threads=config.threads,
            contract=config.contract,
        )
        result.results.append(trained.summary())
        artifacts[trained.run_id] = trained.artifact
    best = evaluate_step.select_best(result.results)

    progress(f"evaluate   {best['name']} (ONNX) on {len(parts.holdout)} holdout rows")
    evaluation = evaluate_step.evaluate(
        artifacts[str(best["run_id"])],
        parts.holdout,
        running_pin=baseline.pin,
        gate=config.gate,
        candidate_name=str(best["name"]),
        environment=config.environment,
        baseline_source=baseline.source,
        data_sha256=data.sha256,
        reference_sha256=reference.sha256 if reference else None,
    )
    result.evaluation = evaluation
    (config.report_dir / "evaluation.md").write_text(evaluation.to_markdown())
    if evaluation.unchanged:
        result.outcome = evaluation.reasons[0]
        progress(result.outcome)
        return result
    if not evaluation.passed:
        result.outcome = "not promoted: " + "; ".join(evaluation.reasons)
        progress(result.outcome)
        return result

    progress("register   churn-model, alias challenger; publish to " + config.bucket_uri)
    result.registered = register(
        artifacts[str(best["run_id"])],
        run_id=str(best["run_id"]),
        bucket_uri=config.bucket_uri,
        holdout=parts.holdout,
        data=DataSource(config.data_uri, data.sha256, source_version(config.data_uri)),
        gate=evaluation.to_dict(),
    )
    if config.dry_run:
        result.outcome = "dry run: registered, no promotion proposed"
        return result
    progress(f"promote    overlays/{config.environment}/{config.pin_as}.yaml")
    pin = Pin(
        uri=result.registered.uri,
        sha256=result.registered.sha256,
        version=result.registered.version,
    )
    body = evaluation.to_markdown() + "\n" + report.to_markdown()
    result.promotion = promote(
        config.environment, pin, body, repo=config.repo, base=config.base, pin_as=config.pin_as
    )
    if result.promotion.url:
        add_pull_request(result.registered.uri, result.promotion.url)
    result.outcome = "promoted: " + result.promotion.message
    return result
