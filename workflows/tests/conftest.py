"""Shared fixtures: small synthetic data, a real MLflow store on SQLite, a real git repository.

Every fixture lives under the test's own tmp_path, so tests run in parallel
(pytest-xdist) without sharing state. The MLflow schema is created once per
worker and copied, because creating it takes seconds and copying takes none.
"""

# ruff: noqa: E402 - the thread settings must precede the numeric imports
from __future__ import annotations

import os

# One thread per BLAS/OpenMP pool, set before numpy/sklearn load them: two xdist
# workers share two cores, and spinning OpenMP threads on a busy machine cost 10x.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pandas as pd
import pytest
from churn_workflows.pin import ENVIRONMENTS, PIN_KINDS, pin_path
from churn_workflows.steps.synthetic import generate
from churn_workflows.tracking import MlflowClient, connect, mlflow

REPO_ROOT = Path(__file__).resolve().parents[2]
# Tests share sample data modules that live beside them (import mode is importlib).
sys.path.insert(0, str(Path(__file__).parent))

IDENTITY = ["-c", "user.name=test", "-c", "user.email=test@example.invalid"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *IDENTITY, *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    """3000 customers: small enough for speed, large enough for stable metrics."""
    return generate(3000, seed=7)


@pytest.fixture(scope="session")
def reference() -> pd.DataFrame:
    return generate(2000, seed=11)


@pytest.fixture(scope="session")
def _template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Migrating a new SQLite store takes seconds: do it once and copy the file. No
    # experiment is made here: it would keep the default artifact root, ./mlruns.
    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def tracking_uri(tmp_path: Path, _template_store: Path) -> Iterator[str]:
    """A fresh MLflow store (SQLite + local artifacts) for this test, already connected."""
    db = tmp_path / "mlflow" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(_template_store, db)
    uri = f"sqlite:///{db}"
    connect(uri, artifact_location=(tmp_path / "mlflow" / "artifacts").as_uri())
    yield uri
    if mlflow.active_run():
        mlflow.end_run()


def model_versions(uri: str) -> list[object]:
    """Every version of churn-model in the store at ``uri``."""
    return list(
        MlflowClient(tracking_uri=uri, registry_uri=uri).search_model_versions("name='churn-model'")
    )


@pytest.fixture
def versions(tracking_uri: str) -> Callable[[], list[object]]:
    """A function listing churn-model's versions in this test's store."""
    return lambda: model_versions(tracking_uri)


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server on a free localhost port, standing in for AWS (which tests cannot reach)."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    deadline = time.monotonic() + 120
    while True:
        try:
            boto3.client("s3").list_buckets()
            break
        except Exception:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.2)
    for env in ("dev",):
        for kind in ("data", "models"):
            boto3.client("s3").create_bucket(
                Bucket=f"churn-{env}-{kind}",
                CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
            )
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def gitops(tmp_path: Path) -> Path:
    """A git repository with the committed model and shadow pins on ``main``, like GitOps."""
    repo = tmp_path / "gitops"
    repo.mkdir()
    run_git(repo, "init", "--quiet", "--initial-branch=main")
    for env in ENVIRONMENTS:
        for kind in PIN_KINDS:
            target = repo / pin_path(env, kind)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO_ROOT / pin_path(env, kind), target)
    (repo / "README.md").write_text("gitops\n")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "--quiet", "-m", "bootstrap pins")
    return repo
