"""Publish: upload the serving artifact to the models bucket under its content address.

The key is ``churn-model/sha256/<sha256>.onnx`` (docs/contracts.md), so an
upload is idempotent: an object already there is read back and its digest
checked instead of being written again.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from churn_workflows import PipelineError, exit_code
from churn_workflows.steps.export import sha256
from churn_workflows.storage import exists, read_bytes, write_bytes

__all__ = ["artifact_uri", "main", "publish_artifact"]


def artifact_uri(bucket_uri: str, digest: str) -> str:
    """Where an artifact with ``digest`` lives in the bucket at ``bucket_uri``."""
    return f"{bucket_uri.rstrip('/')}/churn-model/sha256/{digest}.onnx"


def publish_artifact(artifact: bytes, bucket_uri: str) -> str:
    """Upload ``artifact`` (unless already there) and return its URI."""
    digest = sha256(artifact)
    uri = artifact_uri(bucket_uri, digest)
    if exists(uri):
        found = sha256(read_bytes(uri))
        if found != digest:
            raise PipelineError(f"{uri}: holds content with sha256 {found}; refusing to overwrite")
        return uri
    return write_bytes(uri, artifact)


def main(argv: Sequence[str] | None = None) -> int:
    """Upload one ONNX file and print its URI."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--bucket", required=True, help="s3://churn-<env>-models or file://...")
    args = parser.parse_args(argv)
    try:
        print(publish_artifact(args.artifact.read_bytes(), args.bucket))
    except PipelineError as exc:
        print(f"publish: {exc}", file=sys.stderr)
        return exit_code(exc)
    except OSError as exc:
        print(f"publish: {args.artifact}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
