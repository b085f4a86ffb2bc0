"""The sandbox apply workflow: run by hand, behind an environment, always cleaned up.

It is the one workflow, with the kind e2e, that changes infrastructure, and it does so in a
throwaway account only. Its steps call infra/opentofu/scripts/sandbox.py, whose logic is
tested in infra/opentofu/tests/test_sandbox.py; here the wiring is checked: trigger,
protection, credentials, order, and that the destroy steps run whatever happened before.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "sandbox-apply.yaml"
SCRIPT = ROOT / "infra" / "opentofu" / "scripts" / "sandbox.py"
PIN_STEP = "Seed a model and pin it for the sandbox"
IMAGES_STEP = "Delete the churn-api images it pushed (a repository holding images is not destroyed)"


def _workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))
    return dict(data)


def _job() -> dict[str, Any]:
    (job,) = _workflow()["jobs"].values()
    return dict(job)


def _named(step_name: str) -> dict[str, Any]:
    return next(s for s in _job()["steps"] if s.get("name") == step_name)


def _order(*names: str) -> list[int]:
    steps = [s.get("name") for s in _job()["steps"]]
    return [steps.index(n) for n in names]


def test_it_runs_by_hand_only() -> None:
    assert _workflow()["on"] == {"workflow_dispatch": None}


def test_it_runs_behind_the_sandbox_environment_with_oidc_only() -> None:
    job = _job()
    assert job["environment"] == "sandbox", "the environment's reviewers approve each run"
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert _workflow()["permissions"] == {}
    credentials = next(
        s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws")
    )
    assert credentials["with"]["role-to-assume"] == (
        "arn:aws:iam::${{ vars.SANDBOX_AWS_ACCOUNT_ID }}:role/churn-sandbox-github-actions"
    )
    assert "aws-access-key-id" not in credentials["with"], "no long-lived keys"
    assert int(credentials["with"]["role-duration-seconds"]) >= job["timeout-minutes"] * 60


def test_apply_check_then_destroy_in_that_order() -> None:
    apply_shared, apply_dev, pin, wait, predict, teardown, destroy_dev, destroy_shared = _order(
        "Apply envs/shared",
        "Apply envs/dev",
        PIN_STEP,
        "Wait until every Argo CD Application is Synced and Healthy",
        "One prediction through an ALB",
        "Delete what the cluster made in AWS (load balancers, volumes)",
        "Destroy envs/dev",
        "Destroy envs/shared",
    )
    assert apply_shared < apply_dev < pin < wait < predict
    assert predict < teardown < destroy_dev < destroy_shared


def test_a_model_is_seeded_and_pinned_before_the_wait_and_checked_by_the_prediction() -> None:
    """dev's pin in Git is the bootstrap pin in a fresh fork: without the seeded pin churn-api
    never becomes Ready and the wait stops at churn-api-dev."""
    setup, pin = _order("The workspace's Python environment (builds the fixture model)", PIN_STEP)
    assert setup < pin
    assert _named("The workspace's Python environment (builds the fixture model)")["run"] == (
        "make setup"
    )
    pin_run = str(_named(PIN_STEP)["run"])
    assert '.venv/bin/python "$SANDBOX" pin-model --pin-file "$PIN_FILE"' in pin_run
    assert "update-kubeconfig" in pin_run
    assert '--image "$image"' in pin_run
    assert _named(PIN_STEP)["env"]["DIGEST"] == "${{ steps.image.outputs.digest }}"
    predict_run = str(_named("One prediction through an ALB")["run"])
    assert '--pin-file "$PIN_FILE"' in predict_run
    assert _job()["env"]["PIN_FILE"]
    assert "git" not in pin_run.split(), "the sandbox's pin is never committed"


@pytest.mark.parametrize(
    "name",
    [
        "Delete what the cluster made in AWS (load balancers, volumes)",
        "Destroy envs/dev",
        IMAGES_STEP,
        "Destroy envs/shared",
    ],
)
def test_cleanup_runs_also_after_a_failure_or_a_cancel(name: str) -> None:
    condition = str(_named(name).get("if", ""))
    assert condition.startswith("always()"), f"{name}: must run whatever happened before"


@pytest.mark.parametrize(
    ("name", "action", "root"),
    [
        ("Apply envs/shared", "apply", "shared"),
        ("Apply envs/dev", "apply", "dev"),
        ("Destroy envs/dev", "destroy", "dev"),
        ("Destroy envs/shared", "destroy", "shared"),
    ],
)
def test_tofu_steps_go_through_the_tested_script(name: str, action: str, root: str) -> None:
    run = " ".join(str(_named(name)["run"]).split())
    assert run.startswith('python3 "$SANDBOX" tofu ')
    assert f"--action {action} --root {root}" in run
    assert "tofu apply" not in run, "apply and destroy arguments are built in sandbox.py"


def test_the_sandbox_serves_its_own_build_of_churn_api() -> None:
    """dev's overlay names an image in dev's account, which the sandbox cannot pull."""
    apply_shared, build, pin = _order(
        "Apply envs/shared", "Build churn-api into the sandbox's registry", PIN_STEP
    )
    assert apply_shared < build < pin, "the repository exists, then the image, then the pin"
    build_step = _named("Build churn-api into the sandbox's registry")
    assert build_step["uses"].startswith("docker/build-push-action@")
    assert build_step["with"]["file"] == "services/churn-api/Dockerfile"
    assert "push-by-digest=true" in build_step["with"]["outputs"]
    assert ".amazonaws.com/churn-api," in build_step["with"]["outputs"]
    destroy_dev, images, destroy_shared = _order(
        "Destroy envs/dev", IMAGES_STEP, "Destroy envs/shared"
    )
    assert destroy_dev < images < destroy_shared
    assert _named(IMAGES_STEP)["run"] == '.venv/bin/python "$SANDBOX" delete-images'


def test_every_script_subcommand_the_workflow_calls_exists() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    called = set(re.findall(r'(?:python3|\.venv/bin/python) "\$SANDBOX" ([a-z-]+)', text))
    assert called == {
        "runner-cidr",
        "region",
        "tofu",
        "pin-model",
        "wait-argocd",
        "predict",
        "teardown",
        "delete-images",
    }
    usage = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in called:
        assert command in usage, f"sandbox.py has no {command} subcommand"
    assert _job()["env"]["SANDBOX"] == str(SCRIPT.relative_to(ROOT))


def test_the_runner_is_the_only_address_let_in() -> None:
    where = _named("The runner's address and dev's region")
    assert "runner-cidr" in where["run"]
    for name in ("Apply envs/dev", "One prediction through an ALB"):
        assert _named(name)["env"]["RUNNER_CIDR"] == "${{ steps.where.outputs.cidr }}"
