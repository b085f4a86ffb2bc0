"""Read and write bytes at a URI: ``file://``, a plain path, or ``s3://`` through boto3.

boto3 reads ``AWS_ENDPOINT_URL_S3`` itself, so any S3-compatible store works
the same; credentials come from its usual chain (IRSA in the cluster).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from churn_workflows import PipelineError, Unreachable

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

__all__ = ["exists", "local_path", "read_bytes", "write_bytes"]


def _s3() -> S3Client:
    client: S3Client = boto3.client("s3")
    return client


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if not parsed.netloc or not parsed.path.strip("/"):
        raise PipelineError(f"{uri}: an s3 URI needs a bucket and a key")
    return parsed.netloc, parsed.path.lstrip("/")


def local_path(uri: str) -> Path | None:
    """The filesystem path of a ``file://`` URI or plain path; None for ``s3://``."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        return None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:
        raise PipelineError(f"{uri}: unsupported scheme {parsed.scheme!r} (file:// or s3://)")
    return Path(uri)


def read_bytes(uri: str) -> bytes:
    """The object's bytes; a missing object is a PipelineError naming the URI."""
    path = local_path(uri)
    if path is not None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise PipelineError(f"{uri}: file not found") from None
        except OSError as exc:
            raise PipelineError(f"{uri}: cannot read ({exc.strerror})") from None
    bucket, key = _split_s3(uri)
    try:
        body: Any = _s3().get_object(Bucket=bucket, Key=key)["Body"]
        data: bytes = body.read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise PipelineError(f"{uri}: cannot read from S3 ({code or exc})") from None
    except BotoCoreError as exc:
        raise Unreachable(f"{uri}: cannot reach S3 ({exc})") from None
    return data


def exists(uri: str) -> bool:
    """Whether an object is at ``uri``."""
    path = local_path(uri)
    if path is not None:
        return path.is_file()
    bucket, key = _split_s3(uri)
    try:
        _s3().head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise PipelineError(f"{uri}: cannot check S3 ({exc})") from None
    return True


def write_bytes(uri: str, data: bytes) -> str:
    """Write ``data`` at ``uri`` (a local write is atomic) and return the URI."""
    path = local_path(uri)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(data)
        partial.replace(path)
        return uri
    bucket, key = _split_s3(uri)
    try:
        _s3().put_object(Bucket=bucket, Key=key, Body=data)
    except ClientError as exc:
        raise PipelineError(f"{uri}: cannot write to S3 ({exc})") from None
    except BotoCoreError as exc:
        raise Unreachable(f"{uri}: cannot reach S3 ({exc})") from None
    return uri
