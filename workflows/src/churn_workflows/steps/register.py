"""Register and publish: the gated candidate becomes version N of ``churn-model``.

Steps: look for a version already made from this very artifact (tag
``churn.candidate_sha256``) and return it, so a retried or re-run step creates
nothing twice; otherwise create the model version from the run's ONNX
artifact, stamp its number into the artifact's metadata (``churn.model_version``;
the graph is untouched and its scores are checked unchanged), upload it to the
models bucket under its content address, then tag the version (run id, data
digest, git commit, ONNX sha256, URI) and point the alias ``challenger`` at it.
If anything fails after the version exists, the version is deleted: nothing is
left half-registered.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from churn_workflows import PipelineError, exit_code
from churn_workflows.steps.export import onnx_probabilities, sha256, stamp
from churn_workflows.steps.ingest import read_dataset
from churn_workflows.steps.publish import artifact_uri, publish_artifact
from churn_workflows.steps.train import split
from churn_workflows.storage import exists
from churn_workflows.tracking import REGISTERED_MODEL, MlflowClient, connect, mlflow

__all__ = ["ALIAS", "Registered", "main", "register"]

ALIAS = "challenger"
_CANDIDATE_TAG = "churn.candidate_sha256"


@dataclass(frozen=True)
class Registered:
    """A registered, published model version: what the pin will name."""

    version: str
    sha256: str
    uri: str
    run_id: str
    created: bool


def _existing(client: MlflowClient, candidate_sha: str, bucket_uri: str) -> Registered | None:
    found = client.search_model_versions(
        f"name='{REGISTERED_MODEL}' and tags.`{_CANDIDATE_TAG}`='{candidate_sha}'"
    )
    for version in found:
        digest = version.tags.get("churn.onnx_sha256")
        if digest and exists(artifact_uri(bucket_uri, digest)):
            client.set_registered_model_alias(REGISTERED_MODEL, ALIAS, version.version)
            return Registered(
                str(version.version),
                digest,
                artifact_uri(bucket_uri, digest),
                str(version.run_id),
                False,
            )
        # A version without its artifact is a leftover of an interrupted run.
        client.delete_model_version(REGISTERED_MODEL, version.version)
    return None


def register(
    artifact: bytes,
    *,
    run_id: str,
    bucket_uri: str,
    holdout: pd.DataFrame,
    publish: Callable[[bytes, str], str] = publish_artifact,
) -> Registered:
    """Register ``artifact`` (the run's ONNX export) and publish it; idempotent."""
    client = MlflowClient()
    candidate_sha = sha256(artifact)
    if (done := _existing(client, candidate_sha, bucket_uri)) is not None:
        return done
    try:
        client.create_registered_model(REGISTERED_MODEL)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    run = client.get_run(run_id)
    version = client.create_model_version(
        REGISTERED_MODEL,
        source=f"{run.info.artifact_uri}/onnx",
        run_id=run_id,
        tags={_CANDIDATE_TAG: candidate_sha},
    )
    try:
        final = stamp(artifact, {"churn.model_version": str(version.version)})
        before, after = onnx_probabilities(artifact, holdout), onnx_probabilities(final, holdout)
        if not np.array_equal(before, after):
            raise PipelineError("stamping the version changed the model's scores")
        digest = sha256(final)
        uri = publish(final, bucket_uri)
        tags = {
            "churn.mlflow_run_id": run_id,
            "churn.data_sha256": run.data.tags.get("churn.data_sha256", ""),
            "churn.git_commit": run.data.tags.get("mlflow.source.git.commit", ""),
            "churn.onnx_sha256": digest,
            "churn.model_uri": uri,
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
    parser.add_argument("--data", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--output", type=Path, required=True, help="a folder: uri, sha256, version")
    args = parser.parse_args(argv)
    try:
        connect(args.tracking_uri)
        registered = register(
            args.artifact.read_bytes(),
            run_id=args.run_id,
            bucket_uri=args.bucket,
            holdout=split(read_dataset(args.data).frame).holdout,
        )
    except PipelineError as exc:
        print(f"register: {exc}", file=sys.stderr)
        return exit_code(exc)
    except OSError as exc:
        print(f"register: {args.artifact}: {exc.strerror}", file=sys.stderr)
        return 1
    args.output.mkdir(parents=True, exist_ok=True)
    for key in ("uri", "sha256", "version"):
        (args.output / key).write_text(str(getattr(registered, key)))
    (args.output / "registered.json").write_text(json.dumps(asdict(registered), sort_keys=True))
    print(json.dumps(asdict(registered), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
