"""Fetch the model artifact's bytes from ``file://`` or ``s3://``.

Steps: parse the URI, read the object, and turn every failure into a
``ModelLoadError`` whose ``reason`` is one of the metric's label values, so the
caller can log and count it without knowing the storage. ``s3://`` goes through
boto3, which honours ``AWS_ENDPOINT_URL_S3`` (any S3-compatible store) and the
usual credential chain (IRSA on EKS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal
from urllib.parse import unquote, urlsplit

__all__ = ["LOAD_FAILURE_REASONS", "LoadFailureReason", "ModelLoadError", "fetch"]

LoadFailureReason = Literal[
    "not_found",
    "unreadable",
    "digest_mismatch",
    "contract_mismatch",
    "storage_unreachable",
    "invalid_model",
]
LOAD_FAILURE_REASONS: Final[tuple[LoadFailureReason, ...]] = (
    "not_found",
    "unreadable",
    "digest_mismatch",
    "contract_mismatch",
    "storage_unreachable",
    "invalid_model",
)
# Fail fast on an unreachable store: the pod stays unready either way, and a
# quick, clear refusal beats a probe timeout.
_S3_TIMEOUT_SECONDS: Final = 5
_S3_ATTEMPTS: Final = 2


class ModelLoadError(Exception):
    """The model was refused; ``reason`` says why in one word, ``detail`` in a sentence."""

    def __init__(self, reason: LoadFailureReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: LoadFailureReason = reason
        self.detail = detail


def _fetch_file(uri: str) -> bytes:
    path = Path(unquote(urlsplit(uri).path))
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError("not_found", f"no file at {path}") from None
    except OSError as exc:  # a directory, no permission, an I/O error
        raise ModelLoadError("unreadable", f"cannot read {path}: {exc.strerror or exc}") from None


def _fetch_s3(uri: str) -> bytes:
    # Imported here: a file:// deployment never pays boto3's import time.
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import (  # noqa: PLC0415
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
    )

    parts = urlsplit(uri)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    client = boto3.client(
        "s3",
        config=Config(
            connect_timeout=_S3_TIMEOUT_SECONDS,
            read_timeout=_S3_TIMEOUT_SECONDS,
            retries={"max_attempts": _S3_ATTEMPTS, "mode": "standard"},
        ),
    )
    try:
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}:
            raise ModelLoadError("not_found", f"no object {uri} ({code})") from None
        raise ModelLoadError("unreadable", f"cannot read {uri}: {code or exc}") from None
    except EndpointConnectionError as exc:
        raise ModelLoadError(
            "storage_unreachable", f"cannot reach the store for {uri}: {exc}"
        ) from None
    except BotoCoreError as exc:  # credentials, timeouts, a broken connection
        raise ModelLoadError("storage_unreachable", f"cannot fetch {uri}: {exc}") from None
    return body


def fetch(uri: str) -> bytes:
    """Return the bytes at ``uri`` (``file://`` or ``s3://``); raise ``ModelLoadError``."""
    if uri.startswith("file://"):
        return _fetch_file(uri)
    if uri.startswith("s3://"):
        return _fetch_s3(uri)
    raise ModelLoadError("not_found", f"unsupported URI scheme in {uri!r}")
