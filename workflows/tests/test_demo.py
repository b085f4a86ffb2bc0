"""``make demo`` end to end in a scratch repository: data to a served prediction, twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from churn_workflows.__main__ import main as cli
from churn_workflows.steps.promote import git, read_pin_git


@pytest.mark.slow
def test_the_demo_promotes_serves_and_a_second_run_is_unchanged(
    gitops: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(gitops)
    # A token in the shell must not send the demo's file:// pin to GitHub.
    monkeypatch.setenv("GITHUB_TOKEN", "not-used")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn-platform")
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")
    assert cli(["demo", "--rows", "3000"]) == 0
    out = capsys.readouterr().out
    assert "GITHUB_TOKEN/GITHUB_REPOSITORY ignored: the demo promotes locally" in out
    assert "validation    validation passed: 3000 rows" in out
    assert "running       none (bootstrap pin)" in out
    assert "gate          passed" in out
    assert "model         churn-model version 1 (alias challenger)" in out
    prediction = json.loads(out.split("prediction    ", 1)[1].splitlines()[0])
    assert prediction["customer_id"] == "demo-0001"
    assert prediction["model_version"] == "1"
    assert 0.0 <= prediction["probability"] <= 1.0
    assert isinstance(prediction["churn"], bool)
    pin = json.loads((gitops / ".local" / "last-promoted.json").read_text())
    clone = gitops / ".local" / "gitops"
    assert read_pin_git(clone, "main", "dev").sha256 == pin["MODEL_SHA256"]
    # The working repository itself is untouched: no branch, no commit.
    assert git(gitops, "branch", "--list", "--format=%(refname:short)") == "main"

    assert cli(["demo", "--rows", "3000", "--no-serve"]) == 0
    again = capsys.readouterr().out
    assert "running       version 1: ROC AUC" in again
    # The same model, byte for byte: one digest, one version, no second promotion.
    assert f"outcome       unchanged: {pin['MODEL_SHA256']} already serves in dev" in again
    assert "gate          unchanged" in again
    assert "churn-model version 2" not in again
    assert "promotion" not in again
    assert read_pin_git(clone, "main", "dev").sha256 == pin["MODEL_SHA256"]


def test_the_command_line_names_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli([]) == 2
    assert cli(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err
