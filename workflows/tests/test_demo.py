"""``make demo`` end to end in a scratch repository: data to a served prediction, twice.

The first run closes the loop through the shadow: the retrain is pinned as the
shadow and merged, scored beside the model on live traffic, compared, and
proposed as the model with that evidence. The second refuses a retrain that
does not clear the gate, and stops there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from churn_store.prediction_store import open_store
from churn_workflows.__main__ import main as cli
from churn_workflows.champion_challenger import latest_champion_challenger
from churn_workflows.pin import parse_shadow_pin, pin_path
from churn_workflows.steps.promote import git, read_pin_git


@pytest.mark.slow
def test_the_demo_promotes_serves_shadows_the_retrain_and_a_second_run_is_unchanged(
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

    loop = out.split("== the loop: capture, outcomes, monitor, retrain, shadow, promote ==")[1]
    steps = [line.split()[0] for line in loop.strip().splitlines()]
    assert steps == [
        *("capture", "feedback", "monitor", "retrain", "gate"),
        *("shadow", "serve", "compare", "promote"),
    ]
    assert "gate          against version 1: passed" in loop
    # The retrain was pinned as the shadow, and that branch merged as the reviewer would.
    assert "shadow        shadow/churn-model-dev-v2 merged into main" in loop
    git(clone, "merge-base", "--is-ancestor", "shadow/churn-model-dev-v2", "main")
    shadow_path = pin_path("dev", "shadow")
    shadow = parse_shadow_pin(git(clone, "show", f"main:{shadow_path}"), shadow_path)
    assert shadow is not None
    assert shadow.version == "2"
    assert read_pin_git(clone, "main", "dev").version == "1"  # the shadow never serves

    # Every capture of the second population carries the shadow's probability beside the model's.
    store_url = f"sqlite:///{gitops / '.local' / 'demo' / 'predictions.db'}"
    store = open_store(store_url)
    try:
        now = datetime.now(UTC)
        rows = list(store.joined(now - timedelta(days=1), now + timedelta(minutes=1)))
    finally:
        store.close()
    shadowed = [r for r in rows if r.shadow_model_version is not None]
    assert len(rows) == 5000  # 3,000 before the shadow, 2,000 beside it
    assert len(shadowed) == 2000
    assert {r.model_version for r in shadowed} == {"1"}
    assert {r.shadow_model_version for r in shadowed} == {"2"}
    assert all(
        r.shadow_probability is not None and 0.0 <= r.shadow_probability <= 1.0 for r in shadowed
    )
    assert "serve         version 1 with version 2 as the shadow: 2000 predictions captured, " \
        "2000 scored by the shadow too" in loop  # fmt: skip

    # The monitor's comparison is in the store, and is the summary's line.
    comparison = latest_champion_challenger(store_url, "2", "1")
    assert comparison is not None
    assert comparison.labelled == sum(1 for r in shadowed if r.churned is not None)
    assert comparison.gain is not None
    assert f"compare       {comparison.summary()}" in loop

    # Version 2 is proposed as the model, its body carrying the live evidence from the store.
    assert "promote       version 2 with the live shadow evidence: " in loop
    assert "local branch promote/churn-model-dev-v2" in loop
    body = git(clone, "show", "--no-patch", "--format=%B", "promote/churn-model-dev-v2")
    assert body.startswith("Promote churn-model version 2 to dev")
    assert "### Gate: passed" in body  # the offline evidence stays
    assert comparison.to_markdown().strip() in body
    model_path = pin_path("dev")
    changed = git(clone, "diff", "--name-only", "main", "promote/churn-model-dev-v2")
    assert changed == model_path
    assert read_pin_git(clone, "promote/churn-model-dev-v2", "dev").sha256 == shadow.sha256

    # The loop runs again, but no retrain clears this gate: the demo says so and stops there.
    assert cli(["demo", "--rows", "3000", "--min-improvement", "0.5"]) == 0
    again = capsys.readouterr().out
    rerun = again.split("== the loop: capture, outcomes, monitor, retrain, shadow, promote ==")[1]
    steps = [line.split()[0] for line in rerun.strip().splitlines()]
    assert steps == ["capture", "feedback", "monitor", "retrain", "gate", "next"]
    assert "next          not promoted: " in rerun
    assert "its lower bound is not above 0.5" in rerun
    assert "shadow/churn-model-dev-v3" not in git(clone, "branch", "--list")
    assert "running       version 1: ROC AUC" in again
    # The same model, byte for byte: one digest, one version, no second promotion.
    assert f"outcome       unchanged: {pin['MODEL_SHA256']} already serves in dev" in again
    assert "gate          unchanged" in again
    assert "churn-model version 2" not in again
    assert "churn-model version 3" not in again
    assert "promotion" not in again
    assert read_pin_git(clone, "main", "dev").sha256 == pin["MODEL_SHA256"]


def test_the_command_line_names_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli([]) == 2
    assert cli(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err
