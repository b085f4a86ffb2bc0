"""The Dockerfile: checkov's checks, its shape, and its install step run for real.

No Docker engine runs here, so the image's own ``uv sync`` lines are read from
the Dockerfile and run on a copy of the files it copies; the environment they
build must serve without scikit-learn (or any dev dependency) installed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

SERVICE = Path(__file__).parents[1]
ROOT = SERVICE.parents[1]
DOCKERFILE = SERVICE / "Dockerfile"
UV = ROOT / ".local/tools/bin/uv"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_checkov_passes() -> None:
    checkov = os.environ.get("CHECKOV")
    if not checkov:
        pytest.fail("CHECKOV is not set: run through `make test-service`, which exports it")
    run = subprocess.run(
        [*shlex.split(checkov), "-f", str(DOCKERFILE), "--framework", "dockerfile",
         "--skip-download", "--compact", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Failed checks: 0" in run.stdout


def test_multi_stage_on_one_base_pinned_by_digest() -> None:
    bases = [args.split()[0] for kind, args in instructions() if kind == "FROM"]
    assert len(bases) == 2
    assert len(set(bases)) == 1
    assert re.fullmatch(r"python:3\.11-slim-\w+@sha256:[0-9a-f]{64}", bases[0])


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    final = instructions()[[k for k, _ in instructions()].index("FROM", 1) :]
    (user,) = [args for kind, args in final if kind == "USER"]
    uid, _, gid = user.partition(":")
    assert int(uid) >= 10_000
    assert int(gid) >= 10_000
    assert "HEALTHCHECK" in {k for k, _ in final}
    assert ("EXPOSE", "8000") in final
    # Only the built environment crosses into the final stage: no sources, no build tools.
    copies = [args for kind, args in final if kind == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"]
    assert not [args for kind, args in final if kind == "RUN" and "install" in args]


@pytest.mark.skipif(not UV.exists(), reason="uv is installed by `make setup`")
def test_the_image_install_step_builds_an_environment_without_dev_dependencies(
    tmp_path: Path,
) -> None:
    build = tmp_path / "src"
    for kind, args in instructions():
        if kind == "COPY" and not args.startswith("--from"):
            *sources, dest = args.split()
            for source in sources:
                target = build / dest / (Path(source).name if dest.endswith("/") else "")
                if dest in {"./", "."}:
                    target = build / Path(source).name
                target.parent.mkdir(parents=True, exist_ok=True)
                if (ROOT / source).is_dir():
                    shutil.copytree(
                        ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy(ROOT / source, target)
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "copy",
        "UV_COMPILE_BYTECODE": "0",
    }
    env.pop("VIRTUAL_ENV", None)
    syncs = [args for kind, args in instructions() if kind == "RUN" and args.startswith("uv sync")]
    assert len(syncs) == 2
    for command in syncs:
        subprocess.run([str(UV), *shlex.split(command)[1:]], cwd=build, env=env, check=True,
                       capture_output=True, timeout=600)  # fmt: skip
    site = next((tmp_path / "venv/lib").glob("python3.*/site-packages"))
    installed = {p.name.lower() for p in site.iterdir()}
    for forbidden in ("sklearn", "skl2onnx", "onnx", "pandas", "joblib", "pytest"):
        assert forbidden not in installed
    assert {"churn_api", "churn_contract", "onnxruntime", "granian", "litestar"} <= installed
    python = tmp_path / "venv/bin/python"
    subprocess.run(
        [str(python), "-c", "import churn_api.__main__, churn_api.app, churn_api.model"],
        check=True, timeout=120,
    )  # fmt: skip
