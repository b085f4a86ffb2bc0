"""Storage: URIs resolve to local paths or S3 objects; bad URIs are named."""

from __future__ import annotations

from pathlib import Path

import pytest
from churn_workflows import PipelineError, Unreachable
from churn_workflows.storage import exists, local_path, read_bytes, write_bytes


def test_local_uris_and_plain_paths(tmp_path: Path) -> None:
    assert local_path((tmp_path / "a b.onnx").as_uri()) == tmp_path / "a b.onnx"
    assert local_path("relative/x.csv") == Path("relative/x.csv")
    assert local_path("s3://bucket/key") is None
    uri = write_bytes((tmp_path / "deep" / "x.bin").as_uri(), b"x")
    assert exists(uri)
    assert read_bytes(uri) == b"x"
    assert not list((tmp_path / "deep").glob(".*.partial"))


def test_unsupported_schemes_and_bucketless_uris_are_named() -> None:
    with pytest.raises(PipelineError, match=r"https://x/y\.csv: unsupported scheme 'https'"):
        read_bytes("https://x/y.csv")
    with pytest.raises(PipelineError, match="s3://only-bucket: an s3 URI needs a bucket and a key"):
        read_bytes("s3://only-bucket")


def test_s3_objects_round_trip(s3_endpoint: str) -> None:
    uri = "s3://churn-dev-models/some/key.bin"
    assert not exists(uri)
    write_bytes(uri, b"payload")
    assert exists(uri)
    assert read_bytes(uri) == b"payload"


def test_an_unreachable_s3_endpoint_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(Unreachable, match=r"s3://churn-dev-data/x\.parquet: cannot reach S3"):
        read_bytes("s3://churn-dev-data/x.parquet")
