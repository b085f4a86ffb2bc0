"""Register and publish: one version per artifact, tags and alias, nothing left half-registered."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import pandas as pd
import pytest
from churn_workflows import PipelineError
from churn_workflows.steps.export import sha256
from churn_workflows.steps.register import main, register
from churn_workflows.steps.train import candidates, split, train_candidate
from churn_workflows.tracking import MlflowClient


@pytest.fixture
def trained(tracking_uri: str, frame: pd.DataFrame):  # type: ignore[no-untyped-def]
    parts = split(frame)
    return train_candidate(
        candidates()[1], parts, data_uri="d", data_sha256="d" * 64, commit="c0ffee"
    ), parts


def test_registers_once_with_tags_alias_and_the_stamped_artifact(
    tmp_path: Path, trained, versions: Callable[[], list[object]]
) -> None:  # type: ignore[no-untyped-def]
    result, parts = trained
    bucket = (tmp_path / "bucket").as_uri()
    first = register(
        result.artifact, run_id=result.run_id, bucket_uri=bucket, holdout=parts.holdout
    )
    assert first.created
    assert first.version == "1"
    stored = Path(first.uri.removeprefix("file://")).read_bytes()
    assert sha256(stored) == first.sha256
    props = {p.key: p.value for p in onnx.load_from_string(stored).metadata_props}
    assert props["churn.model_version"] == "1"
    assert props["churn.mlflow_run_id"] == result.run_id
    client = MlflowClient()
    version = client.get_model_version_by_alias("churn-model", "challenger")
    assert str(version.version) == "1"
    assert version.tags["churn.onnx_sha256"] == first.sha256
    assert version.tags["churn.git_commit"] == "c0ffee"
    assert version.tags["churn.data_sha256"] == "d" * 64
    assert version.tags["churn.mlflow_run_id"] == result.run_id
    again = register(
        result.artifact, run_id=result.run_id, bucket_uri=bucket, holdout=parts.holdout
    )
    assert not again.created
    assert again.version == "1"
    assert again.sha256 == first.sha256
    assert len(versions()) == 1


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
            publish=unreachable_bucket,
        )
    assert versions() == []
    # The next attempt starts clean and succeeds.
    done = register(
        result.artifact,
        run_id=result.run_id,
        bucket_uri=(tmp_path / "b").as_uri(),
        holdout=parts.holdout,
    )
    assert done.created
    assert len(versions()) == 1


def test_command_writes_the_pin_fields(tmp_path: Path, trained, tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    result, parts = trained
    (tmp_path / "m.onnx").write_bytes(result.artifact)
    parts.holdout.to_parquet(tmp_path / "d.parquet")
    code = main(
        [
            "--artifact",
            str(tmp_path / "m.onnx"),
            "--run-id",
            result.run_id,
            "--data",
            str(tmp_path / "d.parquet"),
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
