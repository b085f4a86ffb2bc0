"""Fetching the artifact: file:// and s3:// (moto's server standing in for AWS S3)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from churn_api.storage import ModelLoadError, fetch
from service_testing import free_port

MOTO_SERVER = str(Path(sys.executable).with_name("moto_server"))
BUCKET = "churn-dev-models"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real HTTP S3 API on 127.0.0.1: moto's server, the one fake (for AWS)."""
    port = free_port()
    process = subprocess.Popen(
        [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 at moto through the same variable production uses; return the endpoint."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    client = boto3.client("s3")
    if BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    return s3_endpoint


def put(key: str, data: bytes) -> str:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=data)
    return f"s3://{BUCKET}/{key}"


def test_fetch_from_s3(s3: str) -> None:
    uri = put("churn-model/sha256/abc.onnx", b"model bytes")
    assert fetch(uri) == b"model bytes"


def test_a_missing_s3_object_is_not_found(s3: str) -> None:
    with pytest.raises(ModelLoadError, match="NoSuchKey") as raised:
        fetch(f"s3://{BUCKET}/churn-model/sha256/absent.onnx")
    assert raised.value.reason == "not_found"


def test_a_missing_bucket_is_not_found(s3: str) -> None:
    with pytest.raises(ModelLoadError, match="NoSuchBucket") as raised:
        fetch("s3://churn-nowhere-models/x.onnx")
    assert raised.value.reason == "not_found"


def test_an_unreachable_store_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with pytest.raises(ModelLoadError, match="cannot reach the store") as raised:
        fetch(f"s3://{BUCKET}/x.onnx")
    assert raised.value.reason == "storage_unreachable"


def test_fetch_a_file(tmp_path: Path) -> None:
    path = tmp_path / "model with space.onnx"
    path.write_bytes(b"abc")
    assert fetch(path.as_uri()) == b"abc"


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as raised:
        fetch((tmp_path / "absent.onnx").as_uri())
    assert raised.value.reason == "not_found"


def test_a_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as raised:
        fetch(tmp_path.as_uri())
    assert raised.value.reason == "unreadable"
