"""The registry as the clusters run it: MLflow's server on PostgreSQL, the client from uv.lock.

The server is ``mlflow server`` (the version uv.lock pins, the one the chart's
image must run) on a throwaway PostgreSQL database ``churn_mlflow_<uuid8>``,
with proxied artifacts, on a free loopback port. Without PostgreSQL the test
skips saying why, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import yaml
from churn_workflows.lineage import DataSource
from churn_workflows.pin import Pin
from churn_workflows.serving_alias import sync_alias
from churn_workflows.steps.export import model_inputs, onnx_probabilities
from churn_workflows.steps.register import register
from churn_workflows.steps.train import candidates, split, train_candidate
from churn_workflows.tracking import MlflowClient, connect, mlflow

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get(
    "CHURN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _locked_mlflow() -> str:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    (version,) = [p["version"] for p in lock["package"] if p["name"] == "mlflow"]
    return str(version)


def test_the_charts_server_runs_the_client_version_in_uv_lock() -> None:
    values = yaml.safe_load((REPO_ROOT / "platform/apps/mlflow/values.yaml").read_text())
    assert values["image"]["tag"] == _locked_mlflow()
    assert mlflow.__version__ == _locked_mlflow()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    name = f"churn_mlflow_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required under CI: {exc}")
        pytest.skip(f"not run: no PostgreSQL at {POSTGRES_URL} ({exc})")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base, _, _ = POSTGRES_URL.rpartition("/")
            yield base.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def tracking_server(postgres_database: str, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            postgres_database,
            "--artifacts-destination",
            (tmp_path / "artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            if server.poll() is not None:
                raise AssertionError(
                    f"mlflow server exited: {(tmp_path / 'server.log').read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("mlflow server was not healthy after 240s")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.mark.slow
def test_register_load_and_alias_against_the_server_on_postgresql(
    tracking_server: str, frame: pd.DataFrame, tmp_path: Path
) -> None:
    connect(tracking_server)
    parts = split(frame)
    trained = train_candidate(
        candidates()[1], parts, data_uri="d", data_sha256="d" * 64, commit="c0ffee"
    )
    registered = register(
        trained.artifact,
        run_id=trained.run_id,
        bucket_uri=(tmp_path / "bucket").as_uri(),
        holdout=parts.holdout,
        data=DataSource("s3://churn-dev-data/snapshots/customers.parquet", "d" * 64, "v1"),
        gate={"passed": True},
    )
    loaded = mlflow.pyfunc.load_model(f"models:/churn-model/{registered.version}")
    scored = loaded.predict(model_inputs(parts.holdout.head(4)))
    expected = onnx_probabilities(trained.artifact, parts.holdout.head(4))
    assert scored["probabilities"][:, 1].tolist() == pytest.approx(expected.tolist(), abs=1e-6)
    client = MlflowClient()
    pin = Pin(registered.uri, registered.sha256, registered.version)
    assert sync_alias(client, "prod", pin) == f"serving-prod: moved to version {registered.version}"
    assert (
        sync_alias(client, "prod", pin) == f"serving-prod: unchanged (version {registered.version})"
    )
    version = client.get_model_version_by_alias("churn-model", "serving-prod")
    assert version.tags["churn.onnx_sha256"] == registered.sha256
    assert version.tags["churn.data_version_id"] == "v1"
