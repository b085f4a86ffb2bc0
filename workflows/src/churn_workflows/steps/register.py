"""Register and publish: the gated candidate becomes version N of ``churn-model``.

Steps: look for a version already made from this very artifact (tag
``churn.onnx_sha256``) and return it, so a retried or re-run step creates
nothing twice; otherwise log the artifact to the training run as an MLflow
model (ONNX flavour, with a signature: ``mlflow.pyfunc.load_model`` loads it),
register that model, publish the same bytes to the models bucket under their
content address, write the lineage record beside them, then tag the version
(run, data source and version, commit, workflow, artifact, gate) and point the
alias ``challenger`` at it. The artifact is not re-stamped: the bytes MLflow
keeps, the bytes published and the bytes evaluated are one file with one
sha256. If anything fails after the version exists, the version is deleted:
nothing is left half-registered.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort  # type: ignore[import-untyped,unused-ignore]
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from churn_workflows import PipelineError, exit_code
from churn_workflows.lineage import (
    DataSource,
    Workflow,
    build_lineage,
    lineage_uri,
    source_version,
    write_lineage,
)
from churn_workflows.steps.export import artifact_contract, model_inputs, onnx_probabilities, sha256
from churn_workflows.steps.ingest import read_dataset
from churn_workflows.steps.profile import publish_profile, training_profile
from churn_workflows.steps.publish import artifact_uri, publish_artifact
from churn_workflows.steps.train import split
from churn_workflows.storage import exists
from churn_workflows.tracking import REGISTERED_MODEL, MlflowClient, connect, git_commit, mlflow

__all__ = ["ALIAS", "MODEL_NAME", "Registered", "log_onnx_model", "main", "register"]

ALIAS = "challenger"
# The name of the ONNX-flavour MLflow model inside the training run.
MODEL_NAME = "onnx-model"
_DIGEST_TAG = "churn.onnx_sha256"


@dataclass(frozen=True)
class Registered:
    """A registered, published model version: what the pin will name."""

    version: str
    sha256: str
    uri: str
    run_id: str
    created: bool

    @property
    def lineage_uri(self) -> str:
        """Where this version's lineage record is."""
        return lineage_uri(self.uri)


def _existing(client: MlflowClient, digest: str, bucket_uri: str) -> Registered | None:
    found = client.search_model_versions(
        f"name='{REGISTERED_MODEL}' and tags.`{_DIGEST_TAG}`='{digest}'"
    )
    uri = artifact_uri(bucket_uri, digest)
    for version in found:
        if exists(uri) and exists(lineage_uri(uri)):
            client.set_registered_model_alias(REGISTERED_MODEL, ALIAS, version.version)
            return Registered(str(version.version), digest, uri, str(version.run_id), False)
        # A version without its artifact is a leftover of an interrupted run.
        client.delete_model_version(REGISTERED_MODEL, version.version)
    return None


def log_onnx_model(artifact: bytes, run_id: str, example: pd.DataFrame) -> str:
    """Log ``artifact`` to ``run_id`` as an ONNX-flavour MLflow model; return its model URI.

    The signature is the graph's: one ``[-1, 1]`` tensor per feature in, the
    ``probabilities`` tensor out, inferred from ``example`` scored by ONNX Runtime.
    """
    feeds = model_inputs(example, artifact_contract(artifact))
    session = ort.InferenceSession(artifact, providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(["probabilities"], feeds)
    signature = mlflow.models.infer_signature(feeds, {"probabilities": probabilities})
    with mlflow.start_run(run_id=run_id):
        info = mlflow.onnx.log_model(
            onnx.load_from_string(artifact),
            name=MODEL_NAME,
            signature=signature,
            # One file, byte for byte the published artifact.
            save_as_external_data=False,
            onnx_execution_providers=["CPUExecutionProvider"],
            pip_requirements=[f"onnxruntime=={ort.__version__}"],
        )
    return str(info.model_uri)


def register(
    artifact: bytes,
    *,
    run_id: str,
    bucket_uri: str,
    holdout: pd.DataFrame,
    data: DataSource,
    gate: Mapping[str, Any],
    workflow: Workflow | None = None,
    publish: Callable[[bytes, str], str] = publish_artifact,
) -> Registered:
    """Register ``artifact`` (the run's ONNX export), publish it and its lineage; idempotent."""
    client = MlflowClient()
    digest = sha256(artifact)
    if (done := _existing(client, digest, bucket_uri)) is not None:
        return done
    try:
        client.create_registered_model(REGISTERED_MODEL)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    run = client.get_run(run_id)
    model_uri = log_onnx_model(artifact, run_id, holdout.head(5))
    version = client.create_model_version(
        REGISTERED_MODEL,
        source=model_uri,
        run_id=run_id,
        tags={_DIGEST_TAG: digest},
        model_id=model_uri.removeprefix("models:/"),
    )
    try:
        uri = publish(artifact, bucket_uri)
        profile = training_profile(
            holdout, onnx_probabilities(artifact, holdout), artifact_contract(artifact)
        )
        publish_profile(profile, bucket_uri, digest)
        commit = run.data.tags.get("mlflow.source.git.commit") or git_commit()
        made_by = workflow or Workflow.from_env()
        record = build_lineage(
            artifact_sha256=digest,
            artifact_uri=uri,
            version=str(version.version),
            run_id=run_id,
            registry_uri=mlflow.get_registry_uri(),
            commit=commit,
            workflow=made_by,
            data=data,
            gate=dict(gate),
            contract=artifact_contract(artifact),
        )
        lineage = write_lineage(record)
        tags = {
            "churn.mlflow_run_id": run_id,
            "churn.data_uri": data.uri,
            "churn.data_version_id": data.version_id or "",
            "churn.data_sha256": data.sha256,
            "churn.git_commit": commit,
            "churn.workflow_name": made_by.name,
            "churn.workflow_uid": made_by.uid or "",
            "churn.model_uri": uri,
            "churn.lineage_uri": lineage,
            "churn.gate_passed": str(bool(gate.get("passed"))).lower(),
        }
        for key, value in tags.items():
            client.set_model_version_tag(REGISTERED_MODEL, version.version, key, value)
        client.set_registered_model_alias(REGISTERED_MODEL, ALIAS, version.version)
    except BaseException:
        client.delete_model_version(REGISTERED_MODEL, version.version)
        raise
    return Registered(str(version.version), digest, uri, run_id, True)


def main(argv: Sequence[str] | None = None) -> int:
    """Register and publish the gated candidate (Argo's register)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--data", required=True, help="the ingested copy (for the signature)")
    parser.add_argument("--data-uri", required=True, help="the source the data was read from")
    parser.add_argument("--data-sha256", required=True, help="sha256 of the source's bytes")
    parser.add_argument("--evaluation", type=Path, required=True, help="the evaluate step's JSON")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--output", type=Path, required=True, help="a folder: uri, sha256, version")
    args = parser.parse_args(argv)
    try:
        connect(args.tracking_uri)
        source = DataSource(args.data_uri, args.data_sha256, source_version(args.data_uri))
        registered = register(
            args.artifact.read_bytes(),
            run_id=args.run_id,
            bucket_uri=args.bucket,
            holdout=split(read_dataset(args.data).frame).holdout,
            data=source,
            gate=json.loads(args.evaluation.read_text()),
        )
    except PipelineError as exc:
        print(f"register: {exc}", file=sys.stderr)
        return exit_code(exc)
    except OSError as exc:
        print(f"register: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    args.output.mkdir(parents=True, exist_ok=True)
    for key in ("uri", "sha256", "version", "lineage_uri"):
        (args.output / key.replace("_", "-")).write_text(str(getattr(registered, key)))
    (args.output / "registered.json").write_text(json.dumps(asdict(registered), sort_keys=True))
    print(json.dumps(asdict(registered), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
