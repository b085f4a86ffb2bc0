"""The lineage record: one ``lineage.json`` per model version, beside its artifact.

The serving artifact holds only what defines the model (graph, contract,
threshold), so identical models have identical bytes. Everything about the run
that made it lives here instead, in one JSON document stored under the
artifact's own content address (``churn-model/sha256/<sha256>.lineage.json``):

- ``artifact``: sha256 and URI of the ONNX file;
- ``model``: registered name, version, MLflow run id and the registry's URI;
- ``code``: the git commit; ``workflow``: the Argo workflow's name and uid;
- ``data``: the source URI, the object's version id (S3 versioning) and the
  sha256 of the source bytes as read, not of a re-written copy;
- ``contract_sha256`` and ``training_profile_sha256``;
- ``gate``: the decision and its evidence;
- ``pull_request``: added when the promotion PR opens.

``churn-api`` reads it beside the pinned artifact and answers it at
``GET /v1/model``: from a running pod to the data digest and the commit.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from churn_contract import Contract, builtin_contract, contract_json

from churn_workflows import PipelineError, Unreachable
from churn_workflows.storage import exists, local_path, read_bytes, write_bytes

__all__ = [
    "SCHEMA",
    "DataSource",
    "Workflow",
    "add_pull_request",
    "build_lineage",
    "contract_sha256",
    "lineage_uri",
    "read_lineage",
    "source_version",
    "write_lineage",
]

SCHEMA = "churn-lineage/v1"


@dataclass(frozen=True)
class DataSource:
    """The data a model was trained on, as it was read from its source."""

    uri: str
    sha256: str
    version_id: str | None = None


@dataclass(frozen=True)
class Workflow:
    """The run that made the model: the Argo workflow, or ``local`` for in-process runs."""

    name: str
    uid: str | None = None

    @classmethod
    def from_env(cls) -> Workflow:
        """``ARGO_WORKFLOW_NAME``/``_UID`` (set by the templates), else a local run."""
        name = os.environ.get("ARGO_WORKFLOW_NAME", "").strip()
        return cls(name, os.environ.get("ARGO_WORKFLOW_UID") or None) if name else cls("local")


def lineage_uri(artifact_uri: str) -> str:
    """Where the lineage record of the artifact at ``artifact_uri`` lives."""
    if not artifact_uri.endswith(".onnx"):
        raise PipelineError(f"{artifact_uri}: not an .onnx artifact URI")
    return artifact_uri.removesuffix(".onnx") + ".lineage.json"


def contract_sha256(contract: Contract | None = None) -> str:
    """The digest of the feature contract the artifact embeds (its canonical JSON)."""
    return hashlib.sha256(contract_json(contract or builtin_contract()).encode()).hexdigest()


def source_version(uri: str) -> str | None:
    """The S3 object version of ``uri`` (None for files and unversioned buckets)."""
    if local_path(uri) is not None:
        return None
    parsed = urlparse(uri)
    try:
        head = boto3.client("s3").head_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
    except ClientError as exc:
        raise PipelineError(f"{uri}: cannot read its S3 version ({exc})") from None
    except BotoCoreError as exc:
        raise Unreachable(f"{uri}: cannot reach S3 ({exc})") from None
    version = head.get("VersionId")
    return None if version in (None, "null") else str(version)


def build_lineage(
    *,
    artifact_sha256: str,
    artifact_uri: str,
    version: str,
    run_id: str,
    registry_uri: str,
    commit: str,
    workflow: Workflow,
    data: DataSource,
    gate: dict[str, Any],
    training_profile_sha256: str | None = None,
    contract: Contract | None = None,
) -> dict[str, Any]:
    """The record for one registered, published version."""
    return {
        "schema": SCHEMA,
        "artifact": {"sha256": artifact_sha256, "uri": artifact_uri},
        "model": {
            "name": "churn-model",
            "version": version,
            "mlflow_run_id": run_id,
            "registry_uri": registry_uri,
        },
        "code": {"git_commit": commit},
        "workflow": asdict(workflow),
        "data": asdict(data),
        "contract_sha256": contract_sha256(contract),
        "training_profile_sha256": training_profile_sha256,
        "gate": gate,
        "pull_request": None,
    }


def _encode(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()


def write_lineage(record: dict[str, Any]) -> str:
    """Store ``record`` beside its artifact; return its URI."""
    return write_bytes(lineage_uri(str(record["artifact"]["uri"])), _encode(record))


def read_lineage(artifact_uri: str) -> dict[str, Any] | None:
    """The lineage record beside ``artifact_uri``; None when there is none."""
    uri = lineage_uri(artifact_uri)
    if not exists(uri):
        return None
    try:
        record = json.loads(read_bytes(uri))
    except ValueError as exc:
        raise PipelineError(f"{uri}: not JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise PipelineError(f"{uri}: not a {SCHEMA} record")
    return record


def add_pull_request(artifact_uri: str, url: str) -> None:
    """Record the promotion PR's URL in the artifact's lineage (no record: nothing to do)."""
    record = read_lineage(artifact_uri)
    if record is None or record.get("pull_request") == url:
        return
    record["pull_request"] = url
    write_lineage(record)
