"""Publish: content-addressed keys, idempotent uploads, file:// and s3:// (moto's server)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import boto3
import pytest
from churn_workflows import PipelineError
from churn_workflows.steps.publish import artifact_uri, main, publish_artifact
from churn_workflows.storage import write_bytes


def test_the_key_is_the_contracts_content_address() -> None:
    assert artifact_uri("s3://churn-dev-models/", "ab" * 32) == (
        "s3://churn-dev-models/churn-model/sha256/" + "ab" * 32 + ".onnx"
    )


def test_a_local_upload_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    bucket = (tmp_path / "bucket").as_uri()
    digest = hashlib.sha256(b"model").hexdigest()
    uri = publish_artifact(b"model", bucket)
    assert uri == artifact_uri(bucket, digest)
    stored = tmp_path / "bucket" / "churn-model" / "sha256" / f"{digest}.onnx"
    mtime = stored.stat().st_mtime_ns
    assert publish_artifact(b"model", bucket) == uri
    assert stored.stat().st_mtime_ns == mtime


def test_a_key_holding_other_bytes_is_not_overwritten(tmp_path: Path) -> None:
    bucket = (tmp_path / "bucket").as_uri()
    write_bytes(artifact_uri(bucket, hashlib.sha256(b"model").hexdigest()), b"tampered")
    with pytest.raises(
        PipelineError, match=r"holds content with sha256 \w+; refusing to overwrite"
    ):
        publish_artifact(b"model", bucket)


def test_an_s3_upload_lands_under_the_key(s3_endpoint: str) -> None:
    uri = publish_artifact(b"onnx-bytes", "s3://churn-dev-models")
    key = uri.removeprefix("s3://churn-dev-models/")
    body = boto3.client("s3").get_object(Bucket="churn-dev-models", Key=key)["Body"].read()
    assert body == b"onnx-bytes"
    assert publish_artifact(b"onnx-bytes", "s3://churn-dev-models") == uri


def test_command_uploads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.onnx").write_bytes(b"m")
    assert main(["--artifact", str(tmp_path / "m.onnx"), "--bucket", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().out.strip().endswith(".onnx")
