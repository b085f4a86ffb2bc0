"""The workflows image's Dockerfile: non-root, pinned base, checkov's Dockerfile checks."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "workflows" / "Dockerfile"
CHECKOV = os.environ.get("CHECKOV", ".local/tools/checkov/bin/checkov")


def test_bases_are_pinned_by_digest_and_the_user_is_not_root() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert bases
    assert all(re.search(r"@sha256:[0-9a-f]{64}$", b) for b in bases)
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users[-1] == "10001:10001"
    assert "MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false" in text


def test_checkov_dockerfile_checks_pass() -> None:
    out = subprocess.run(
        [
            *shlex.split(CHECKOV),
            "-f",
            str(DOCKERFILE),
            "--framework",
            "dockerfile",
            "--skip-download",
            "--compact",
            "--quiet",
            "-o",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    summary = json.loads(out.stdout)["summary"]
    assert summary["failed"] == 0, out.stdout[-2000:]
    assert summary["passed"] > 0


def test_no_workflows_module_imports_the_web_service() -> None:
    # The contract lives in churn_contract and the prediction store in churn_store: the
    # image carries neither the service's sources nor its dependencies.
    importers = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "workflows" / "src").rglob("*.py")
        if re.search(r"^\s*(from|import)\s+churn_api\b", path.read_text(), flags=re.MULTILINE)
    ]
    assert importers == []


def test_the_workflows_package_does_not_depend_on_the_web_service() -> None:
    project = tomllib.loads((ROOT / "workflows" / "pyproject.toml").read_text())
    names = {
        re.split(r"[\s\[<>=!~;@]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in project["project"]["dependencies"]
    }
    assert {"churn-contract", "churn-store"} <= names
    assert "churn-api" not in names
    assert "churn-api" not in project["tool"]["uv"]["sources"]


def test_the_image_copies_no_service_sources() -> None:
    copied = re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    allowed = (ROOT / "workflows" / "Dockerfile.dockerignore").read_text().splitlines()
    assert not [line for line in copied if "services/churn-api/src" in line]
    assert "!services/churn-api/src/" not in allowed
