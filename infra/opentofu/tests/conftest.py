"""Shared fixtures for the OpenTofu checks that run without OpenTofu or providers.

Steps:
1. Put this folder on sys.path, so tests import the helpers beside them (tofu_hcl,
   tofu_controls, tofu_docs, tofu_checkov) under --import-mode=importlib.
2. Run checkov once per session, one process per root in parallel, and keep its JSON.
3. At the end of the session print one line per root: files parsed, checkov
   passed/failed/skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tofu_checkov import (
    CheckovError,
    CheckovReport,
    checkov_command,
    checkov_skips,
    run_checkov,
)
from tofu_hcl import INFRA, ROOTS, load_config, load_hcl

__all__: list[str] = []


# ----------------------------------------------------------------------------- checkov


@pytest.fixture(scope="session")
def checkov_reports() -> dict[str, CheckovReport]:
    """checkov's report per root, computed once per session."""
    command = checkov_command()
    if command is None:
        pytest.skip("CHECKOV is not set: run through `make test-infra`, which pins checkov")
    try:
        reports = run_checkov(command)
    except CheckovError as exc:
        pytest.fail(str(exc))
    _SUMMARY["checkov"] = reports
    return reports


# ----------------------------------------------------------------------------- summary

_SUMMARY: dict[str, Any] = {}


def _module_files(root: Path) -> Iterator[Path]:
    """The .tf files a root reads: its own and those of the local modules it calls."""
    seen: set[Path] = set()
    pending = [root]
    while pending:
        directory = pending.pop()
        if directory in seen:
            continue
        seen.add(directory)
        yield from sorted(directory.glob("*.tf"))
        for body in load_config(directory).modules.values():
            source = str(body.get("source", ""))
            if source.startswith("."):
                pending.append((directory / source).resolve())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print one line per root: files parsed, checkov passed/failed/skipped."""
    reports: dict[str, CheckovReport] = _SUMMARY.get("checkov", {})
    if not (INFRA / "envs").is_dir():
        return
    terminalreporter.section("OpenTofu roots")
    skips = checkov_skips()
    for env in ROOTS:
        root = INFRA / "envs" / env
        files = list(_module_files(root))
        parsed = 0
        for path in files:
            try:
                load_hcl(path)
                parsed += 1
            except Exception:
                continue
        line = f"envs/{env}: {parsed}/{len(files)} .tf files parsed"
        report = reports.get(env)
        if report is None:
            line += "; checkov not run"
        else:
            line += (
                f"; checkov passed {report.passed}, failed {report.failed}, "
                f"skipped {report.skipped} (+{len(skips)} check IDs skipped by .checkov.yaml)"
            )
        terminalreporter.write_line(line)
