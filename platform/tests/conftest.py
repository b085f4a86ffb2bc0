"""Fixtures for the manifest tests: the validator module, rendered overlays, a repository copy."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

# --import-mode=importlib leaves this folder off sys.path.
sys.path.insert(0, str(Path(__file__).parent))
import argocd_tree

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "staging", "prod")
# What Argo CD syncs from this repository; a broken copy needs all of it.
COPIED = ("platform", "clusters", "workflows/manifests", "policies", "monitoring")


def _load_validator() -> ModuleType:
    # platform/ is not a package (it would shadow the standard library's `platform`).
    spec = importlib.util.spec_from_file_location(
        "validate_manifests", Path(__file__).with_name("validate_manifests.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["validate_manifests"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def vm() -> ModuleType:
    """The validator module."""
    return _load_validator()


@pytest.fixture(scope="session")
def kubectl() -> str:
    return os.environ.get("KUBECTL") or str(Path(sys.executable).with_name("kubectl"))


@pytest.fixture(scope="session")
def crd_schemas(vm: ModuleType) -> Path:
    path = vm._default_crd_schemas(ROOT)
    if not path.is_dir():
        pytest.fail(f"CRD schemas not found at {path}: run `make schemas` or set CRD_SCHEMAS")
    return Path(path)


def render(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[dict[str, Any]]]:
    """churn-api rendered once per environment as Argo CD renders it: the overlay with the
    ApplicationSet's kustomize images and patches, filled from the fixture cluster Secret."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        docs = pool.map(
            lambda env: argocd_tree.render_path(env, f"platform/apps/churn-api/overlays/{env}"),
            ENVIRONMENTS,
        )
    return dict(zip(ENVIRONMENTS, docs, strict=True))


def copy_repository(tmp_path: Path) -> Path:
    """Copy everything Argo CD syncs into ``tmp_path``, to break on purpose."""
    for part in COPIED:
        if (ROOT / part).exists():
            shutil.copytree(ROOT / part, tmp_path / part)
    # An app folder a cluster lists but that is not written yet renders as empty, so that the
    # clusters still render and the broken part is what the validator reports.
    for kfile in (tmp_path / "clusters").glob("*/kustomization.yaml"):
        for entry in yaml.safe_load(kfile.read_text()).get("resources", []):
            target = kfile.parent / entry
            if not target.exists():
                target.mkdir(parents=True)
                (target / "kustomization.yaml").write_text("---\nresources: []\n")
    return tmp_path


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of everything Argo CD syncs, to break on purpose."""
    return copy_repository(tmp_path)
