"""Train: a stable split, a reproducible fit, and each candidate a complete MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from churn_workflows import PipelineError
from churn_workflows.steps.ingest import write_dataset
from churn_workflows.steps.train import (
    Candidate,
    build_pipeline,
    candidates,
    main,
    model_frame,
    split,
    train_candidate,
)
from churn_workflows.tracking import MlflowClient, mlflow


def test_the_split_is_disjoint_and_stable(frame: pd.DataFrame) -> None:
    parts = split(frame)
    ids = [set(p["customer_id"]) for p in (parts.train, parts.valid, parts.holdout)]
    assert sum(map(len, ids)) == len(frame)
    assert not (ids[0] & ids[1])
    assert not (ids[0] & ids[2])
    assert not (ids[1] & ids[2])
    assert 0.15 < len(parts.holdout) / len(frame) < 0.25
    # A customer stays in the holdout whatever else the dataset holds.
    assert set(split(frame.sample(frac=0.5, random_state=1)).holdout["customer_id"]) <= ids[2]


def test_the_sweep_has_both_families_and_round_trips_as_json() -> None:
    sweep = candidates()
    assert {c.family for c in sweep} == {"logistic_regression", "hist_gradient_boosting"}
    assert [Candidate.from_json(c.to_json()) for c in sweep] == sweep
    with pytest.raises(PipelineError, match="unknown model family 'svm'"):
        build_pipeline(Candidate("x", "svm"))


@pytest.mark.parametrize("index", [0, 3])
def test_fitting_is_reproducible(frame: pd.DataFrame, index: int) -> None:
    parts = split(frame)
    fit = [
        build_pipeline(candidates()[index]).fit(model_frame(parts.train), parts.train["churn"])
        for _ in range(2)
    ]
    probs = [f.predict_proba(model_frame(parts.valid))[:, 1] for f in fit]
    np.testing.assert_array_equal(probs[0], probs[1])


def test_a_candidate_is_a_complete_mlflow_run(tracking_uri: str, frame: pd.DataFrame) -> None:
    result = train_candidate(
        candidates()[1],
        split(frame),
        data_uri="file:///d.parquet",
        data_sha256="d" * 64,
        commit="c0ffee",
    )
    run = MlflowClient().get_run(result.run_id)
    assert run.data.params["C"] == "1.0"
    assert run.data.params["family"] == "logistic_regression"
    assert run.data.tags["mlflow.source.git.commit"] == "c0ffee"
    assert run.data.tags["churn.data_sha256"] == "d" * 64
    assert {"valid_roc_auc", "threshold", "onnx_parity_max_abs_diff"} <= set(run.data.metrics)
    assert result.valid_roc_auc > 0.7
    assert result.parity_max_abs_diff < 1e-3
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "train"
    logged = mlflow.models.get_model_info(f"runs:/{result.run_id}/sklearn")
    assert logged.signature is not None
    assert logged.saved_input_example_info is not None
    onnx_file = mlflow.artifacts.download_artifacts(
        run_id=result.run_id, artifact_path="onnx/model.onnx"
    )
    assert Path(onnx_file).read_bytes() == result.artifact


def test_command_lists_and_trains(tmp_path: Path, tracking_uri: str, frame: pd.DataFrame) -> None:
    assert main(["--list", str(tmp_path / "c.json")]) == 0
    listed = json.loads((tmp_path / "c.json").read_text())
    assert len(listed) == len(candidates())
    write_dataset(frame, str(tmp_path / "d.parquet"))
    code = main(
        [
            "--candidate",
            json.dumps(listed[0]),
            "--data",
            str(tmp_path / "d.parquet"),
            "--tracking-uri",
            tracking_uri,
            "--result",
            str(tmp_path / "r.json"),
        ]
    )
    assert code == 0
    assert json.loads((tmp_path / "r.json").read_text())["name"] == listed[0]["name"]
