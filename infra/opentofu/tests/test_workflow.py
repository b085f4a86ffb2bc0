"""The GitHub Actions job runs init/validate/test/fmt for every root and module, and lints clean."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from tofu_hcl import ENVIRONMENTS, MODULES, REPO

WORKFLOW = REPO / ".github" / "workflows" / "opentofu.yaml"


def _job() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    (job,) = data["jobs"].values()
    return job


def test_matrix_covers_every_root_and_module() -> None:
    """The matrix lists exactly the roots and modules in infra/opentofu."""
    listed = set(_job()["strategy"]["matrix"]["dir"])
    wanted = {f"envs/{e}" for e in (*ENVIRONMENTS, "shared")} | {f"modules/{m}" for m in MODULES}
    on_disk = {
        str(p.relative_to(REPO / "infra" / "opentofu"))
        for p in (REPO / "infra" / "opentofu").glob("*/*")
        if p.is_dir() and p.parent.name in ("envs", "modules")
    }
    assert listed == wanted == on_disk


def test_steps_run_fmt_init_validate_test() -> None:
    """Each matrix entry runs the four OpenTofu commands, with no backend and no credentials."""
    job = _job()
    runs = [s.get("run", "") for s in job["steps"]]
    for command in ("tofu fmt -check", "tofu init -backend=false", "tofu validate", "tofu test"):
        assert any(r.startswith(command) for r in runs), f"no step runs {command}"
    assert job["permissions"] == {"contents": "read"}, "read-only: nothing here needs a token"
    assert "id-token" not in str(job), "no AWS credentials: tests run against mocked providers"
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False


def test_actionlint_passes() -> None:
    """actionlint (from the dev group) finds nothing in the job file."""
    actionlint = shutil.which("actionlint", path=str(REPO / ".venv" / "bin")) or shutil.which(
        "actionlint"
    )
    if actionlint is None:
        pytest.skip("actionlint is not installed: run `make setup`")
    result = subprocess.run(
        [actionlint, "-no-color", str(WORKFLOW)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
