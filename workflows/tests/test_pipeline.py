"""The pipeline end to end, in-process: promotion, a second run, and each kind of bad input.

Every bad input must stop the run with a message naming what and where, leave
no model version in MLflow and write no promotion branch.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from churn_workflows import PipelineError, Unreachable
from churn_workflows.pin import pin_path
from churn_workflows.pipeline import PipelineConfig, run_pipeline
from churn_workflows.steps.evaluate import GateConfig
from churn_workflows.steps.ingest import write_dataset
from churn_workflows.steps.promote import git, read_pin_git
from churn_workflows.steps.synthetic import generate
from churn_workflows.steps.train import candidates


@pytest.fixture
def config(
    tmp_path: Path, tracking_uri: str, gitops: Path, frame: pd.DataFrame, reference: pd.DataFrame
) -> PipelineConfig:
    write_dataset(frame, str(tmp_path / "data.parquet"))
    write_dataset(reference, str(tmp_path / "reference.parquet"))
    return PipelineConfig(
        data_uri=(tmp_path / "data.parquet").as_uri(),
        reference_uri=(tmp_path / "reference.parquet").as_uri(),
        environment="dev",
        tracking_uri=tracking_uri,
        bucket_uri=(tmp_path / "bucket").as_uri(),
        repo=gitops,
        report_dir=tmp_path / "reports",
        candidates=(candidates()[1],),
    )


def _branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--list", "--format=%(refname:short)").splitlines()


def _nothing_happened(config: PipelineConfig, versions: Callable[[], list[object]]) -> None:
    assert versions() == []
    assert _branches(config.repo) == ["main"]


def test_a_run_promotes_and_an_identical_run_is_unchanged(
    config: PipelineConfig, versions: Callable[[], list[object]]
) -> None:
    messages: list[str] = []
    first = run_pipeline(config, progress=messages.append)
    assert [m.split()[0] for m in messages] == [
        "ingest",
        "validate",
        "train",
        "evaluate",
        "register",
        "promote",
    ]
    assert first.registered is not None
    assert first.promotion is not None
    assert first.evaluation is not None
    assert first.evaluation.running is None
    pinned = read_pin_git(config.repo, first.promotion.branch, "dev")
    assert (pinned.sha256, pinned.version) == (first.registered.sha256, "1")
    assert (config.report_dir / "validation.json").is_file()
    git(config.repo, "merge", "--quiet", "--no-ff", "-m", "review", first.promotion.branch)
    second = run_pipeline(config, progress=lambda _: None)
    assert second.evaluation is not None
    assert second.evaluation.running is not None
    assert second.evaluation.running_pin == {
        "uri": first.registered.uri,
        "sha256": first.registered.sha256,
        "version": "1",
    }
    # Same data, code and parameters: the same bytes, which already serve. Nothing is proposed.
    assert second.evaluation.unchanged
    assert second.outcome == f"unchanged: {first.registered.sha256} already serves in dev"
    assert second.registered is None
    assert second.promotion is None
    assert len(versions()) == 1
    assert _branches(config.repo) == ["main", first.promotion.branch]


def test_a_missing_data_file(config: PipelineConfig, versions: Callable[[], list[object]]) -> None:
    missing = config.data_uri.replace("data.parquet", "gone.parquet")
    with pytest.raises(PipelineError, match=f"{missing}: file not found"):
        run_pipeline(replace(config, data_uri=missing), progress=lambda _: None)
    _nothing_happened(config, versions)


def test_a_corrupt_data_file(config: PipelineConfig, versions: Callable[[], list[object]]) -> None:
    Path(config.data_uri.removeprefix("file://")).write_bytes(b"PAR1\x00garbage")
    with pytest.raises(PipelineError, match=r"data\.parquet: cannot parse as parquet"):
        run_pipeline(config, progress=lambda _: None)
    _nothing_happened(config, versions)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f.rename(columns={"tenure": "months"}), "missing column\\(s\\) tenure"),
        (
            lambda f: f.assign(payment_method=None),
            "column 'payment_method': blank in 3000 row\\(s\\)",
        ),
        (
            lambda f: generate(len(f), seed=7, drift={"monthly_charges": 1.0}),
            "feature 'monthly_charges' drifted from .*reference.parquet: PSI",
        ),
    ],
    ids=["wrong-columns", "all-blank-column", "drift"],
)
def test_data_that_fails_validation(
    config: PipelineConfig,
    versions: Callable[[], list[object]],
    frame: pd.DataFrame,
    damage,
    message: str,
) -> None:  # type: ignore[no-untyped-def]
    write_dataset(damage(frame), config.data_uri)
    with pytest.raises(
        PipelineError,
        match=f"validation failed \\(report: .*validation.json\\):\n  .*data.parquet: {message}",
    ):
        run_pipeline(config, progress=lambda _: None)
    assert (
        (config.report_dir / "validation.md").read_text().startswith("### Data validation: FAILED")
    )
    _nothing_happened(config, versions)


def test_mlflow_unreachable(
    config: PipelineConfig, versions: Callable[[], list[object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(Unreachable, match=f"MLflow at {uri} is unreachable"):
            run_pipeline(replace(config, tracking_uri=uri), progress=lambda _: None)
    _nothing_happened(config, versions)


def test_a_failed_gate_ends_not_promoted(
    config: PipelineConfig, versions: Callable[[], list[object]]
) -> None:
    result = run_pipeline(
        replace(config, gate=GateConfig(min_roc_auc=0.99)), progress=lambda _: None
    )
    assert result.outcome.startswith("not promoted: ROC AUC 0.")
    assert "below the floor 0.99" in result.outcome
    assert result.registered is None
    assert result.promotion is None
    _nothing_happened(config, versions)


def test_a_hand_broken_model_yaml(
    config: PipelineConfig, versions: Callable[[], list[object]]
) -> None:
    path = config.repo / pin_path("dev")
    path.write_text(path.read_text().replace('value: "0"\n', "value: zero\n"))
    git(config.repo, "commit", "--quiet", "-am", "hand edit")
    with pytest.raises(
        PipelineError,
        match=re.escape(f"{pin_path('dev')} at main: invalid model pin: MODEL_VERSION"),
    ):
        run_pipeline(config, progress=lambda _: None)
    _nothing_happened(config, versions)


def test_a_dry_run_registers_but_proposes_nothing(
    config: PipelineConfig, versions: Callable[[], list[object]]
) -> None:
    result = run_pipeline(replace(config, dry_run=True), progress=lambda _: None)
    assert result.registered is not None
    assert result.promotion is None
    assert _branches(config.repo) == ["main"]
    assert len(versions()) == 1
