"""The revert after an aborted release, on a real git repository with the real overlay files."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = Path("platform/apps/churn-api/overlays/dev")
ABORTED_AT = "2026-05-04T12:00:00+00:00"


def _load() -> ModuleType:
    path = ROOT / ".github" / "scripts" / "revert_release.py"
    spec = importlib.util.spec_from_file_location("revert_release", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["revert_release"] = module
    spec.loader.exec_module(module)
    return module


revert = _load()


def _model_pin(sha: str, version: str) -> dict[str, str]:
    return {
        "MODEL_URI": f"s3://churn-dev-models/churn-model/sha256/{sha}.onnx",
        "MODEL_SHA256": sha,
        "MODEL_VERSION": version,
    }


class Repo:
    """A git repository holding dev's two pin files, committed at chosen times."""

    def __init__(self, path: Path, pins: ModuleType) -> None:
        self.path = path
        self.pins = pins
        (path / OVERLAY).mkdir(parents=True)
        for name in ("model.yaml", "kustomization.yaml"):
            shutil.copy(ROOT / OVERLAY / name, path / OVERLAY / name)
        self.git("init", "--quiet", "--initial-branch=main")
        self.commit("bootstrap", "2026-05-01T09:00:00+00:00")

    def git(self, *args: str, when: str = "2026-05-01T09:00:00+00:00") -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Release Bot",
            "GIT_AUTHOR_EMAIL": "release@example.org",
            "GIT_COMMITTER_NAME": "Release Bot",
            "GIT_COMMITTER_EMAIL": "release@example.org",
            "GIT_AUTHOR_DATE": when,
            "GIT_COMMITTER_DATE": when,
        }
        return subprocess.run(
            ["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=True
        ).stdout

    def commit(self, message: str, when: str) -> str:
        self.git("add", "-A", when=when)
        self.git("commit", "--quiet", "--allow-empty", "-m", message, when=when)
        return self.git("rev-parse", "HEAD").strip()

    def set_model(self, sha: str, version: str, when: str) -> str:
        self.pins._write_model_pin(self.path / OVERLAY / "model.yaml", _model_pin(sha, version))
        return self.commit(f"model {version}", when)

    def set_digest(self, digest: str, when: str) -> str:
        self.pins.set_image(self.path / OVERLAY / "kustomization.yaml", digest)
        return self.commit(f"image {digest[:15]}", when)

    def diff(self) -> list[str]:
        """The changed lines of the working tree, without the diff headers."""
        lines = self.git("diff", "--unified=0").splitlines()
        return [line for line in lines if line[:1] in "+-" and not line.startswith(("+++", "---"))]


@pytest.fixture
def repo(tmp_path: Path, pins: ModuleType) -> Repo:
    return Repo(tmp_path, pins)


def _plan(repo: Repo, aborted_at: str = ABORTED_AT) -> object:
    return revert.plan(repo.path, "dev", datetime.fromisoformat(aborted_at))


def test_an_aborted_model_is_reverted_to_the_previous_pin_in_one_file(repo: Repo) -> None:
    repo.set_model("a" * 64, "3", "2026-05-02T09:00:00+00:00")
    bad = repo.set_model("b" * 64, "4", "2026-05-04T11:00:00+00:00")
    decided = _plan(repo)
    assert decided.change is not None
    assert (decided.change.commit, decided.change.kind) == (bad, "model")
    assert revert.apply(repo.path, decided) is True
    assert repo.git("status", "--porcelain").split() == ["M", str(OVERLAY / "model.yaml")]
    assert repo.pins.read_model_pin(repo.path / OVERLAY / "model.yaml") == _model_pin("a" * 64, "3")
    assert len(repo.diff()) == 6, "three pin lines out, three in"


def test_an_aborted_image_is_reverted_to_the_previous_digest_on_one_line(repo: Repo) -> None:
    repo.set_digest("sha256:" + "1" * 64, "2026-05-02T09:00:00+00:00")
    repo.set_model("a" * 64, "3", "2026-05-03T09:00:00+00:00")
    repo.set_digest("sha256:" + "2" * 64, "2026-05-04T11:30:00+00:00")
    decided = _plan(repo)
    assert revert.apply(repo.path, decided) is True
    assert repo.diff() == [
        f"-    digest: sha256:{'2' * 64}",
        f"+    digest: sha256:{'1' * 64}",
    ]


def test_the_first_release_after_the_bootstrap_pin_has_nothing_to_go_back_to(repo: Repo) -> None:
    repo.set_model("a" * 64, "1", "2026-05-04T11:00:00+00:00")
    decided = _plan(repo)
    assert decided.change is None
    assert "bootstrap pin" in decided.reason
    assert revert.apply(repo.path, decided) is False
    assert repo.diff() == []


def test_a_release_committed_after_the_abort_is_left_alone(repo: Repo) -> None:
    repo.set_model("a" * 64, "3", "2026-05-02T09:00:00+00:00")
    repo.set_model("b" * 64, "4", "2026-05-04T11:00:00+00:00")
    repo.set_model("c" * 64, "5", "2026-05-04T12:30:00+00:00")
    decided = _plan(repo)
    assert decided.change is None
    assert "after the abort" in decided.reason


def test_commits_that_touch_the_files_without_changing_a_pin_are_skipped(repo: Repo) -> None:
    repo.set_model("a" * 64, "3", "2026-05-02T09:00:00+00:00")
    bad = repo.set_model("b" * 64, "4", "2026-05-03T09:00:00+00:00")
    model = repo.path / OVERLAY / "model.yaml"
    model.write_text(model.read_text().replace("# The model", "# The pinned model"))
    repo.commit("reword a comment", "2026-05-04T11:00:00+00:00")
    decided = _plan(repo)
    assert decided.change is not None
    assert decided.change.commit == bad


def test_renaming_the_image_entry_is_no_release(repo: Repo) -> None:
    """The entry was once named after the dev account's ECR image; the commit that named it
    `churn-api` moved no digest, so the release before it is the one to put back."""
    kustomization = repo.path / OVERLAY / "kustomization.yaml"
    neutral = kustomization.read_text()
    earlier = "  - name: 111122223333.dkr.ecr.eu-west-1.amazonaws.com/churn-api\n"
    kustomization.write_text(neutral.replace("  - name: churn-api\n", earlier))
    repo.set_digest("sha256:" + "1" * 64, "2026-05-02T09:00:00+00:00")
    bad = repo.set_digest("sha256:" + "2" * 64, "2026-05-03T09:00:00+00:00")
    kustomization.write_text(kustomization.read_text().replace(earlier, "  - name: churn-api\n"))
    repo.commit("name the image by its repository", "2026-05-04T11:00:00+00:00")
    decided = _plan(repo)
    assert decided.change is not None
    assert decided.change.commit == bad
    assert revert.apply(repo.path, decided) is True
    assert repo.diff() == [
        f"-    digest: sha256:{'2' * 64}",
        f"+    digest: sha256:{'1' * 64}",
    ]


def test_the_command_line_writes_the_step_outputs(repo: Repo, tmp_path: Path) -> None:
    repo.set_model("a" * 64, "3", "2026-05-02T09:00:00+00:00")
    bad = repo.set_model("b" * 64, "4", "2026-05-04T11:00:00+00:00")
    outputs = tmp_path / "outputs"
    argv = ["--root", str(repo.path), "--env", "dev", "--aborted-at", "2026-05-04T12:00:00Z"]
    assert revert.main([*argv, "--github-output", str(outputs)]) == 0
    written = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert written["revert"] == "true"
    assert written["commit"] == bad
    assert written["file"] == str(OVERLAY / "model.yaml")
    assert json.loads(written["previous"])["MODEL_VERSION"] == "3"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env", "qa", "--aborted-at", ABORTED_AT], "unknown environment 'qa'"),
        (["--env", "dev", "--aborted-at", "yesterday"], "not an ISO 8601 time"),
        (["--env", "dev", "--aborted-at", "2026-05-04T12:00:00"], "time zone"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(
    repo: Repo, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert revert.main(["--root", str(repo.path), *argv]) == 2
    assert message in capsys.readouterr().err
