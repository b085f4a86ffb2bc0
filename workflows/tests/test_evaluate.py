"""Evaluate and gate: ONNX metrics per segment, the running model on the same holdout, the gate."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from churn_workflows import PipelineError
from churn_workflows.pin import BOOTSTRAP_SHA256, Pin
from churn_workflows.steps.evaluate import GateConfig, evaluate, main, score, select_best
from churn_workflows.steps.export import export_onnx
from churn_workflows.steps.ingest import write_dataset
from churn_workflows.steps.publish import publish_artifact
from churn_workflows.steps.train import (
    build_pipeline,
    candidates,
    model_frame,
    split,
    train_candidate,
)

BOOTSTRAP = Pin(
    "s3://churn-dev-models/churn-model/sha256/" + BOOTSTRAP_SHA256 + ".onnx", BOOTSTRAP_SHA256, "0"
)


@pytest.fixture(scope="module")
def artifacts(frame: pd.DataFrame) -> dict[str, bytes]:
    """A good model and a weak one (trained on a shuffled label), as ONNX."""
    parts = split(frame)
    good = build_pipeline(candidates()[1]).fit(model_frame(parts.train), parts.train["churn"])
    shuffled = parts.train["churn"].sample(frac=1.0, random_state=3).to_numpy()
    weak = build_pipeline(candidates()[0]).fit(model_frame(parts.train), shuffled)
    return {
        "good": export_onnx(good, {"churn.threshold": "0.35"}),
        "weak": export_onnx(weak, {"churn.threshold": "0.35"}),
    }


def test_metrics_come_from_the_onnx_artifact_overall_and_per_contract_type(
    artifacts: dict[str, bytes], frame: pd.DataFrame
) -> None:
    result = score(artifacts["good"], split(frame).holdout)
    assert 0.7 < result["roc_auc"] < 1.0
    assert 0 < result["brier"] < 0.25
    assert result["threshold"] == 0.35
    assert set(result["segments"]) == {"month-to-month", "one-year", "two-year"}
    assert sum(s["rows"] for s in result["segments"].values()) == result["rows"]


def test_without_a_running_model_the_floors_decide(
    artifacts: dict[str, bytes], frame: pd.DataFrame
) -> None:
    holdout = split(frame).holdout
    passed = evaluate(artifacts["good"], holdout, running_pin=BOOTSTRAP, gate=GateConfig())
    assert passed.passed
    assert passed.running is None
    assert "none (bootstrap pin)" in passed.to_markdown()
    failed = evaluate(artifacts["weak"], holdout, running_pin=BOOTSTRAP, gate=GateConfig())
    assert not failed.passed
    assert failed.reasons[0].startswith("ROC AUC 0.")
    assert "below the floor 0.7" in failed.reasons[0]


def test_the_candidate_is_compared_with_the_running_model(
    tmp_path: Path, artifacts: dict[str, bytes], frame: pd.DataFrame
) -> None:
    holdout = split(frame).holdout
    uri = publish_artifact(artifacts["good"], tmp_path.as_uri())
    running = Pin(uri, hashlib.sha256(artifacts["good"]).hexdigest(), "1")
    same = evaluate(
        artifacts["good"], holdout, running_pin=running, gate=GateConfig(min_improvement=0.01)
    )
    assert same.running is not None
    assert same.running["roc_auc"] == same.candidate["roc_auc"]
    assert same.reasons == [
        "ROC AUC gain over running version 1 is +0.0000, below the required 0.01"
    ]
    better = evaluate(
        artifacts["good"],
        holdout,
        running_pin=Pin(
            publish_artifact(artifacts["weak"], tmp_path.as_uri()),
            hashlib.sha256(artifacts["weak"]).hexdigest(),
            "1",
        ),
        gate=GateConfig(min_improvement=0.01),
    )
    assert better.passed
    table = better.to_markdown()
    assert "| roc_auc |" in table
    assert "| roc_auc[contract_type=two-year] |" in table
    assert "+0." in table


def test_a_running_artifact_with_another_digest_is_refused(
    tmp_path: Path, artifacts: dict[str, bytes], frame: pd.DataFrame
) -> None:
    uri = publish_artifact(artifacts["weak"], tmp_path.as_uri())
    with pytest.raises(PipelineError, match="differs from the pinned " + "c" * 64):
        evaluate(
            artifacts["good"],
            split(frame).holdout,
            running_pin=Pin(uri, "c" * 64, "2"),
            gate=GateConfig(),
        )


def test_the_best_candidate_is_chosen_on_validation() -> None:
    runs = [
        {"name": "a", "run_id": "1", "valid_roc_auc": 0.8},
        {"name": "b", "run_id": "2", "valid_roc_auc": 0.85},
    ]
    assert select_best(runs)["name"] == "b"
    with pytest.raises(PipelineError, match="no candidate finished training"):
        select_best([])


def test_command_gates_a_trained_run(
    tmp_path: Path,
    tracking_uri: str,
    frame: pd.DataFrame,
    gitops: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = train_candidate(
        candidates()[1], split(frame), data_uri="d", data_sha256="d" * 64, commit="c"
    )
    write_dataset(frame, str(tmp_path / "d.parquet"))
    monkeypatch.chdir(gitops)
    args = [
        "--results",
        json.dumps([json.dumps(result.summary())]),
        "--data",
        str(tmp_path / "d.parquet"),
        "--tracking-uri",
        tracking_uri,
        "--environment",
        "dev",
        "--output-dir",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    assert (tmp_path / "out" / "promote").read_text() == "true"
    assert (tmp_path / "out" / "model.onnx").read_bytes() == result.artifact
    assert main([*args, "--min-roc-auc", "0.99"]) == 0
    assert (tmp_path / "out" / "promote").read_text() == "false"
    assert json.loads((tmp_path / "out" / "evaluation.json").read_text())["passed"] is False
