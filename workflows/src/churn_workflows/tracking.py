"""MLflow access for every step: the one place that imports mlflow.

``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is forced to ``false`` before mlflow is
imported, so nothing in the pipeline can unpickle a model it did not write;
every module that needs mlflow imports it from here. ``connect`` checks the
server once, so an unreachable MLflow fails the run with its address before any
work starts.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"
# No usage reporting from CI pods or laptops.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow
from mlflow import MlflowClient

from churn_workflows import Unreachable

__all__ = [
    "EXPERIMENT",
    "REGISTERED_MODEL",
    "MlflowClient",
    "connect",
    "git_commit",
    "mlflow",
    "quiet_model_logging",
]

EXPERIMENT = "churn"
REGISTERED_MODEL = "churn-model"


def connect(
    tracking_uri: str, *, experiment: str = EXPERIMENT, artifact_location: str | None = None
) -> str:
    """Point mlflow at ``tracking_uri``, check it answers, select the experiment; return its id.

    ``artifact_location`` applies when the experiment is created (the demo keeps
    it under ``.local/``; in the cluster the server decides).
    """
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        found = mlflow.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found
            else mlflow.create_experiment(experiment, artifact_location=artifact_location)
        )
        mlflow.set_experiment(experiment_id=experiment_id)
    except Exception as exc:  # mlflow raises MlflowException, requests errors, ...
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Unreachable(f"MLflow at {tracking_uri} is unreachable: {first_line}") from None
    return str(experiment_id)


def git_commit(repo: Path | None = None) -> str:
    """The commit the code came from: ``GIT_COMMIT`` (set in the image) or ``git rev-parse``."""
    if commit := os.environ.get("GIT_COMMIT"):
        return commit
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, like any developer tool
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


@contextmanager
def quiet_model_logging() -> Iterator[None]:
    """Silence what mlflow says by design here while a candidate is logged.

    mlflow checks the input example by loading the model back, which means
    unpickling it, which this pipeline forbids; it cannot see pip's version in a
    uv environment; it hints about integer columns and guesses at file:// dataset
    sources. The example, the requirements and the dataset are still logged.
    """
    names = ("mlflow.models.model", "mlflow.utils.environment", "mlflow.utils.uv_utils")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\.")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
