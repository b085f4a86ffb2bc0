"""Both images' build stages, replayed without Docker, and their ignore files.

No Docker engine runs here, but the build stage is plain uv: each COPY and `uv sync` of the
stage is replayed in order into a scratch folder (the venv at the path the Dockerfile names,
under the scratch root). That shows what a code change costs (the dependency layer is built
before any source is copied, so it survives the change) and that the installed entry points
run from where the image keeps them. The ignore file must let in exactly what is copied.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".local/tools/bin/uv"
IMAGES = {
    "services/churn-api/Dockerfile": ["churn-api", "--help"],
    "workflows/Dockerfile": ["churn-workflows", "--help"],
}
# What each image's venv must import, and what it must not hold: the workflows image shares
# the prediction store (churn_store), never the web service.
IMPORTED = {
    "services/churn-api/Dockerfile": ["churn_api.app", "churn_api.capture", "churn_api.feedback"],
    "workflows/Dockerfile": ["churn_workflows.steps.monitor", "churn_workflows.steps.outcomes"],
}
ABSENT = {
    "services/churn-api/Dockerfile": ["churn_workflows"],
    "workflows/Dockerfile": ["churn_api", "litestar"],
}


def build_stage(dockerfile: Path) -> list[tuple[str, str]]:
    """(instruction, arguments) of the first stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    stage: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        word, _, rest = line.strip().partition(" ")
        if word == "FROM" and stage:
            break
        stage.append((word, rest))
    return stage


def stage_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in stage:
        if word == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
    return env


def copies(stage: list[tuple[str, str]]) -> list[tuple[list[str], str]]:
    found = []
    for word, rest in stage:
        if word == "COPY" and not rest.startswith("--from"):
            *sources, dest = shlex.split(rest)
            found.append((sources, dest))
    return found


@pytest.mark.parametrize("path", sorted(IMAGES))
def test_dependencies_install_before_any_source_is_copied(path: str) -> None:
    stage = build_stage(ROOT / path)
    syncs = [i for i, (w, r) in enumerate(stage) if w == "RUN" and "uv sync" in r]
    source_copies = [
        i for i, (w, r) in enumerate(stage) if w == "COPY" and re.search(r"\bsrc\b", r)
    ]
    assert syncs
    assert source_copies
    first = stage[syncs[0]][1]
    assert "--no-install-project" in first
    assert "--no-install-workspace" in first
    assert syncs[0] < min(source_copies), "a code change would reinstall every dependency"
    assert all("--locked" in stage[i][1] for i in syncs)


@pytest.mark.parametrize("path", sorted(IMAGES))
def test_uv_comes_from_the_hash_pinned_file_make_setup_uses(path: str) -> None:
    stage = build_stage(ROOT / path)
    installs = [r for w, r in stage if w == "RUN" and "pip install" in r]
    assert installs == ["pip install --no-cache-dir --require-hashes -r tools/uv/requirements.txt"]
    assert (["tools/uv/requirements.txt"], "tools/uv/") in copies(stage)
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r $<" in makefile
    assert re.search(r"^\$\(UV_INSTALLED\): tools/uv/requirements\.txt$", makefile, re.M)


@pytest.mark.parametrize("path", sorted(IMAGES))
def test_every_build_arg_ci_passes_is_declared_in_the_final_stage(path: str) -> None:
    workflow = (ROOT / ".github/workflows/build-image.yaml").read_text()
    passed = re.findall(r"^\s*build-args: (\w+)=", workflow, re.MULTILINE)
    assert passed == ["GIT_COMMIT"]
    text = (ROOT / path).read_text()
    final = text[text.rindex("\nFROM ") :]
    for name in passed:
        assert re.search(rf"^ARG {name}\b", final, re.MULTILINE), f"{path} ignores {name}"


@pytest.mark.parametrize("path", sorted(IMAGES))
def test_the_build_stage_replays_and_the_entry_point_runs(path: str, tmp_path: Path) -> None:
    if not UV.is_file():
        pytest.fail(f"{UV} missing: run `make setup`")
    stage = build_stage(ROOT / path)
    env = stage_env(stage)
    venv_path = env["UV_PROJECT_ENVIRONMENT"]
    root = tmp_path / "image"
    workdir = root / next(r for w, r in stage if w == "WORKDIR").lstrip("/")
    workdir.mkdir(parents=True)
    run_env = {
        **os.environ,
        **env,
        "UV_PROJECT_ENVIRONMENT": str(root / venv_path.lstrip("/")),
        # Speed only: bytecode and copies change nothing this test looks at.
        "UV_COMPILE_BYTECODE": "0",
        "UV_LINK_MODE": "hardlink",
        "UV_PYTHON": "python3",
    }
    run_env.pop("VIRTUAL_ENV", None)
    synced = 0
    for word, rest in stage:
        if word == "COPY":
            *sources, dest = shlex.split(rest)
            for source in sources:
                # `COPY a b dir/` puts each into dir/; `COPY src dir` puts src's content at dir.
                target = (
                    workdir / dest / Path(source).name if dest.endswith("/") else workdir / dest
                )
                if (ROOT / source).is_dir():
                    shutil.copytree(
                        ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / source, target)
        elif word == "RUN" and rest.startswith("uv sync"):
            result = subprocess.run(
                [str(UV), *shlex.split(rest)[1:], "--quiet"],
                cwd=workdir,
                env=run_env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, f"{rest}\n{result.stderr}"
            synced += 1
    assert synced >= 2
    command, *args = IMAGES[path]
    script = root / venv_path.lstrip("/") / "bin" / command
    assert script.read_text().splitlines()[0].startswith(f"#!{root}{venv_path}/bin/python")
    result = subprocess.run(
        [str(script), *args], capture_output=True, text=True, check=False, env=run_env
    )
    assert result.returncode == 0, result.stderr
    probe = (
        "import importlib, importlib.util, sys\n"
        f"for name in {IMPORTED[path]!r}: importlib.import_module(name)\n"
        f"present = [n for n in {ABSENT[path]!r} if importlib.util.find_spec(n)]\n"
        "sys.exit(f'installed but must not be: {present}' if present else 0)\n"
    )
    python = root / venv_path.lstrip("/") / "bin" / "python"
    result = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=False, env=run_env
    )
    assert result.returncode == 0, result.stderr[-2000:]


def ignored(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern that matches decides; `!` lets a path back in."""
    verdict = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        bare = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatchcase(p, bare) or fnmatch.fnmatchcase(p, bare.replace("**/", ""))
            for p in prefixes
        ):
            verdict = not negated
    return verdict


def ignore_patterns(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


@pytest.mark.parametrize("path", sorted(IMAGES))
def test_the_ignore_file_lets_in_exactly_what_is_copied(path: str) -> None:
    dockerfile = ROOT / path
    patterns = ignore_patterns(dockerfile.with_name("Dockerfile.dockerignore"))
    copied = [s for sources, _ in copies(build_stage(dockerfile)) for s in sources]
    assert copied
    for source in copied:
        assert not ignored(patterns, source), f"{source} is copied but ignored"
    for local_state in (".venv/bin/python", ".local/tools/bin/uv", ".git/HEAD", "README.md"):
        assert ignored(patterns, local_state), f"{local_state} would be sent as build context"


def test_the_root_ignore_file_keeps_local_state_out() -> None:
    patterns = ignore_patterns(ROOT / ".dockerignore")
    for local_state in (".venv/bin/python", ".local/tools/bin/uv", ".git/HEAD", "build/x"):
        assert ignored(patterns, local_state), local_state
    assert not ignored(patterns, "workflows/src/churn_workflows/__init__.py")
