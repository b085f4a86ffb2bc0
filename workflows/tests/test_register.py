"""Register and publish: one version per artifact, tags and alias, nothing left half-registered."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from churn_workflows import PipelineError
from churn_workflows.lineage import (
    DataSource,
    Workflow,
    add_pull_request,
    contract_sha256,
    read_lineage,
)
from churn_workflows.steps.export import model_inputs, onnx_probabilities, sha256
from churn_workflows.steps.register import main, register
from churn_workflows.steps.train import candidates, split, train_candidate
from churn_workflows.tracking import MlflowClient, mlflow


@pytest.fixture
def trained(tracking_uri: str, frame: pd.DataFrame):  # type: ignore[no-untyped-def]
    parts = split(frame)
    return train_candidate(
        candidates()[1], parts, data_uri="d", data_sha256="d" * 64, commit="c0ffee"
    ), parts


SOURCE = DataSource("s3://churn-dev-data/snapshots/customers.parquet", "d" * 64, "v-3")
GATE = {"passed": True, "decision": "passed"}


def test_registers_once_a_loadable_mlflow_model_with_lineage(
    tmp_path: Path, trained, versions: Callable[[], list[object]]
) -> None:  # type: ignore[no-untyped-def]
    result, parts = trained
    bucket = (tmp_path / "bucket").as_uri()
    workflow = Workflow("churn-train-x7k2p", "0f6c7e2a")
    first = register(
        result.artifact,
        run_id=result.run_id,
        bucket_uri=bucket,
        holdout=parts.holdout,
        data=SOURCE,
        gate=GATE,
        workflow=workflow,
    )
    assert first.created
    assert first.version == "1"
    # Published as trained: the bytes evaluated, published and kept by MLflow are one file.
    stored = Path(first.uri.removeprefix("file://")).read_bytes()
    assert stored == result.artifact
    assert first.sha256 == sha256(result.artifact)
    local = mlflow.artifacts.download_artifacts("models:/churn-model/1", dst_path=str(tmp_path))
    assert (Path(local) / "model.onnx").read_bytes() == result.artifact
    loaded = mlflow.pyfunc.load_model("models:/churn-model/1")
    assert loaded.metadata.signature is not None
    scored = loaded.predict(model_inputs(parts.holdout.head(3)))
    np.testing.assert_allclose(
        scored["probabilities"][:, 1], onnx_probabilities(result.artifact, parts.holdout.head(3))
    )
    client = MlflowClient()
    version = client.get_model_version_by_alias("churn-model", "challenger")
    assert str(version.version) == "1"
    assert version.tags["churn.onnx_sha256"] == first.sha256
    assert version.tags["churn.git_commit"] == "c0ffee"
    assert version.tags["churn.data_sha256"] == "d" * 64
    assert version.tags["churn.data_uri"] == SOURCE.uri
    assert version.tags["churn.data_version_id"] == "v-3"
    assert version.tags["churn.mlflow_run_id"] == result.run_id
    assert version.tags["churn.workflow_name"] == "churn-train-x7k2p"
    assert version.tags["churn.workflow_uid"] == "0f6c7e2a"
    assert version.tags["churn.gate_passed"] == "true"
    assert version.tags["churn.lineage_uri"] == first.lineage_uri
    record = read_lineage(first.uri)
    assert record is not None
    assert record["artifact"] == {"sha256": first.sha256, "uri": first.uri}
    assert record["model"]["version"] == "1"
    assert record["model"]["mlflow_run_id"] == result.run_id
    assert record["code"] == {"git_commit": "c0ffee"}
    assert record["workflow"] == {"name": "churn-train-x7k2p", "uid": "0f6c7e2a"}
    assert record["data"] == {"uri": SOURCE.uri, "sha256": "d" * 64, "version_id": "v-3"}
    assert record["contract_sha256"] == contract_sha256()
    assert record["gate"] == GATE
    assert record["pull_request"] is None
    again = register(
        result.artifact,
        run_id=result.run_id,
        bucket_uri=bucket,
        holdout=parts.holdout,
        data=SOURCE,
        gate=GATE,
    )
    assert not again.created
    assert again.version == "1"
    assert again.sha256 == first.sha256
    assert len(versions()) == 1
    add_pull_request(first.uri, "https://github.com/acme/churn/pull/7")
    assert (read_lineage(first.uri) or {})["pull_request"] == "https://github.com/acme/churn/pull/7"


def test_a_failed_upload_leaves_no_version(
    tmp_path: Path, trained, versions: Callable[[], list[object]]
) -> None:  # type: ignore[no-untyped-def]
    result, parts = trained

    def unreachable_bucket(artifact: bytes, bucket: str) -> str:
        raise PipelineError(f"{bucket}: cannot reach S3")

    with pytest.raises(PipelineError, match="cannot reach S3"):
        register(
            result.artifact,
            run_id=result.run_id,
            bucket_uri="s3://x",
            holdout=parts.holdout,
            data=SOURCE,
            gate=GATE,
            publish=unreachable_bucket,
        )
    assert versions() == []
    # The next attempt starts clean and succeeds.
    done = register(
        result.artifact,
        run_id=result.run_id,
        bucket_uri=(tmp_path / "b").as_uri(),
        holdout=parts.holdout,
        data=SOURCE,
        gate=GATE,
    )
    assert done.created
    assert len(versions()) == 1


def test_command_writes_the_pin_fields(tmp_path: Path, trained, tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    result, parts = trained
    (tmp_path / "m.onnx").write_bytes(result.artifact)
    (tmp_path / "evaluation.json").write_text(json.dumps(GATE))
    parts.holdout.to_parquet(tmp_path / "d.parquet")
    code = main(
        [
            "--artifact",
            str(tmp_path / "m.onnx"),
            "--run-id",
            result.run_id,
            "--data",
            str(tmp_path / "d.parquet"),
            "--data-uri",
            "file:///snapshots/customers.parquet",
            "--data-sha256",
            "f" * 64,
            "--evaluation",
            str(tmp_path / "evaluation.json"),
            "--bucket",
            str(tmp_path / "bucket"),
            "--tracking-uri",
            tracking_uri,
            "--output",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    assert (tmp_path / "out" / "version").read_text() == "1"
    assert len((tmp_path / "out" / "sha256").read_text()) == 64
    lineage = json.loads(Path((tmp_path / "out" / "lineage-uri").read_text()).read_text())
    assert lineage["data"] == {
        "uri": "file:///snapshots/customers.parquet",
        "sha256": "f" * 64,
        "version_id": None,
    }
