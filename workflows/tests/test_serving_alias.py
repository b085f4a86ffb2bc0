"""The post-merge step: MLflow's serving-<env> alias follows the pin in Git, idempotently."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from churn_workflows import PipelineError
from churn_workflows.__main__ import main as cli
from churn_workflows.lineage import DataSource
from churn_workflows.pin import Pin, pin_path, render_pin
from churn_workflows.serving_alias import sync_alias
from churn_workflows.steps.promote import git
from churn_workflows.steps.register import Registered, register
from churn_workflows.steps.train import candidates, split, train_candidate
from churn_workflows.tracking import MlflowClient


@pytest.fixture
def registered(tracking_uri: str, frame: pd.DataFrame, tmp_path: Path) -> Registered:
    parts = split(frame)
    trained = train_candidate(
        candidates()[1], parts, data_uri="d", data_sha256="d" * 64, commit="c0ffee"
    )
    return register(
        trained.artifact,
        run_id=trained.run_id,
        bucket_uri=(tmp_path / "bucket").as_uri(),
        holdout=parts.holdout,
        data=DataSource("file:///d.parquet", "d" * 64),
        gate={"passed": True},
    )


def _merge_pin(repo: Path, environment: str, pin: Pin) -> None:
    (repo / pin_path(environment)).write_text(render_pin(pin))
    git(repo, "commit", "--quiet", "-am", f"pin {environment}")


def test_the_alias_follows_the_pin_and_a_rerun_changes_nothing(
    registered: Registered, gitops: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pin = Pin(registered.uri, registered.sha256, registered.version)
    _merge_pin(gitops, "dev", pin)
    args = ["serving-alias", "--tracking-uri", tracking_uri, "--repo", str(gitops)]
    assert cli(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        "serving-dev: moved to version 1",
        "serving-staging: unchanged (nothing serves)",
        "serving-prod: unchanged (nothing serves)",
    ]
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("churn-model", "serving-dev").version) == "1"
    assert cli([*args, "--environment", "dev"]) == 0
    assert capsys.readouterr().out == "serving-dev: unchanged (version 1)\n"
    # A pin back to the bootstrap pin: nothing serves, the alias goes.
    bootstrap = (Path(__file__).parents[2] / pin_path("dev")).read_text()
    (gitops / pin_path("dev")).write_text(bootstrap)
    git(gitops, "commit", "--quiet", "-am", "back to bootstrap")
    assert cli([*args, "--environment", "dev"]) == 0
    assert (
        capsys.readouterr().out
        == "serving-dev: removed from version 1 (the pin is the bootstrap pin)\n"
    )
    assert "serving-dev" not in client.get_registered_model("churn-model").aliases


def test_a_registry_that_disagrees_with_git_is_an_error(
    registered: Registered, tracking_uri: str
) -> None:
    client = MlflowClient()
    wrong_digest = Pin(registered.uri, "e" * 64, registered.version)
    with pytest.raises(PipelineError, match="registry's version 1 holds " + registered.sha256):
        sync_alias(client, "prod", wrong_digest)
    missing = Pin(registered.uri, registered.sha256, "9")
    with pytest.raises(
        Exception, match="pins churn-model version 9, which this registry does not have"
    ):
        sync_alias(client, "prod", missing)
    assert "serving-prod" not in client.get_registered_model("churn-model").aliases
