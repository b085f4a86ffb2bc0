"""From a running churn-api back to the data and the commit, through one lineage record."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from churn_workflows import PipelineError
from churn_workflows.lineage import add_pull_request, lineage_uri, read_lineage
from churn_workflows.pipeline import PipelineConfig, run_pipeline
from churn_workflows.steps.ingest import write_dataset
from churn_workflows.steps.train import candidates
from churn_workflows.tracking import MlflowClient, git_commit


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _described_by_a_running_service(pin: dict[str, str], timeout: float = 90.0) -> Any:
    """Serve ``pin`` with the real churn-api; return its GET /v1/model once lineage is read."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    executable = Path(sys.executable).with_name("churn-api")
    env = {**os.environ, **pin, "CHURN_API_HOST": "127.0.0.1", "CHURN_API_PORT": str(port)}
    with subprocess.Popen(
        [str(executable), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as server:
        try:
            deadline = time.monotonic() + timeout
            while True:
                if server.poll() is not None:
                    raise AssertionError(f"churn-api exited: {server.stdout.read()!r}")  # type: ignore[union-attr]
                try:
                    described = _get(f"{base}/v1/model")
                    if described["lineage"] is not None:
                        return described
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"no lineage from {base}/v1/model after {timeout}s")
                time.sleep(0.2)
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.mark.slow
def test_a_running_service_leads_back_to_the_data_digest_and_the_commit(
    tmp_path: Path, tracking_uri: str, gitops: Path, frame: pd.DataFrame, reference: pd.DataFrame
) -> None:
    source = tmp_path / "snapshot.parquet"
    write_dataset(frame, str(source))
    write_dataset(reference, str(tmp_path / "reference.parquet"))
    config = PipelineConfig(
        data_uri=source.as_uri(),
        reference_uri=(tmp_path / "reference.parquet").as_uri(),
        environment="dev",
        tracking_uri=tracking_uri,
        bucket_uri=(tmp_path / "bucket").as_uri(),
        repo=gitops,
        report_dir=tmp_path / "reports",
        candidates=(candidates()[1],),
    )
    result = run_pipeline(config, progress=lambda _: None)
    assert result.registered is not None
    registered = result.registered

    described = _described_by_a_running_service(
        {
            "MODEL_URI": registered.uri,
            "MODEL_SHA256": registered.sha256,
            "MODEL_VERSION": registered.version,
        }
    )
    assert (described["version"], described["sha256"]) == (registered.version, registered.sha256)
    lineage = described["lineage"]
    # The digest of the source's own bytes, and the commit of the code that trained.
    assert lineage["data"]["uri"] == source.as_uri()
    assert lineage["data"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert lineage["code"]["git_commit"] == git_commit()
    assert lineage["artifact"] == {"sha256": registered.sha256, "uri": registered.uri}
    assert lineage["gate"]["decision"] == "passed"
    assert lineage["workflow"] == {"name": "local", "uid": None}
    # The registry agrees: the version named in the record carries the same facts.
    version = MlflowClient().get_model_version("churn-model", lineage["model"]["version"])
    assert version.run_id == lineage["model"]["mlflow_run_id"]
    assert version.tags["churn.onnx_sha256"] == registered.sha256
    assert version.tags["churn.data_sha256"] == lineage["data"]["sha256"]
    assert version.tags["churn.lineage_uri"] == lineage_uri(registered.uri)


def test_a_lineage_record_is_found_beside_its_artifact_only(tmp_path: Path) -> None:
    artifact = (tmp_path / "churn-model" / "sha256" / ("a" * 64 + ".onnx")).as_uri()
    assert lineage_uri(artifact).endswith("/" + "a" * 64 + ".lineage.json")
    assert read_lineage(artifact) is None
    add_pull_request(artifact, "https://example.invalid/pull/1")  # no record: nothing to do
    assert read_lineage(artifact) is None
    with pytest.raises(PipelineError, match=r"not an \.onnx artifact URI"):
        lineage_uri("s3://b/model.bin")
    Path(lineage_uri(artifact).removeprefix("file://")).parent.mkdir(parents=True)
    Path(lineage_uri(artifact).removeprefix("file://")).write_text('{"schema": "other"}')
    with pytest.raises(PipelineError, match="not a churn-lineage/v1 record"):
        read_lineage(artifact)
