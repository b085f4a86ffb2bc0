"""Shared fixtures for the checks on .github: the repository root and the pins script."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def pins() -> ModuleType:
    """The release/promote script, imported from its path (it is not a package)."""
    path = ROOT / ".github" / "scripts" / "pins.py"
    spec = importlib.util.spec_from_file_location("pins", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pins"] = module
    spec.loader.exec_module(module)
    return module
