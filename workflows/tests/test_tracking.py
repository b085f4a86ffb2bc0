"""MLflow access: pickles are never allowed, and an unreachable server is named."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from churn_workflows import Unreachable
from churn_workflows.tracking import connect, git_commit


def test_importing_the_pipeline_forbids_pickle_deserialisation() -> None:
    code = (
        "import os, churn_workflows.tracking; "
        "print(os.environ['MLFLOW_ALLOW_PICKLE_DESERIALIZATION'])"
    )
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "false"
    assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"


def test_every_module_importing_mlflow_goes_through_tracking() -> None:
    src = Path(__file__).resolve().parents[1] / "src" / "churn_workflows"
    importers = [
        p.relative_to(src).as_posix()
        for p in src.rglob("*.py")
        if any(
            line.startswith(("import mlflow", "from mlflow")) for line in p.read_text().splitlines()
        )
    ]
    assert importers == ["tracking.py"]


def test_an_unreachable_mlflow_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    with socket.socket() as sock:  # bound, never listening: a closed port
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(Unreachable, match=f"MLflow at {uri} is unreachable"):
            connect(uri)


def test_git_commit_prefers_the_image_setting(
    monkeypatch: pytest.MonkeyPatch, gitops: Path
) -> None:
    monkeypatch.setenv("GIT_COMMIT", "abc123")
    assert git_commit(gitops) == "abc123"
    monkeypatch.delenv("GIT_COMMIT")
    assert len(git_commit(gitops)) == 40
    assert git_commit(gitops.parent) == "unknown"
