"""Shared setup of the policy tests: the evaluator on sys.path and the per-policy summary.

`pytest --import-mode=importlib` does not put this folder on sys.path, so the helper modules
(kyverno_cel, kyverno_suite) are added here. Every fixture suite run records its report, and
`pytest_terminal_summary` prints one line per policy: its fixtures passed, failed and skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter

sys.path.insert(0, str(Path(__file__).parent))

from kyverno_suite import SuiteReport

REPORTS = pytest.StashKey[list[SuiteReport]]()


def pytest_configure(config: pytest.Config) -> None:
    """Start an empty list of suite reports."""
    config.stash[REPORTS] = []


@pytest.fixture
def record_suite(request: pytest.FixtureRequest) -> Callable[[SuiteReport], None]:
    """Append a policy's suite report to the terminal summary."""
    return request.config.stash[REPORTS].append


def pytest_terminal_summary(
    terminalreporter: TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """One line per policy: fixtures that passed, failed and were skipped as expected."""
    collected: list[SuiteReport] = config.stash[REPORTS]
    reports = sorted(collected, key=lambda r: r.policy)
    if not reports:
        return
    terminalreporter.section("Kyverno policy fixtures (CEL, as kyverno-test.yaml expects)")
    width = max(len(r.policy) for r in reports)
    for report in reports:
        counts = "  ".join(
            f"{label} {len(report.outcomes[key]):2d}"
            for key, label in (("pass", "passed"), ("fail", "failed"), ("skip", "skipped"))
        )
        status = "ok" if not report.problems else f"{report.unexpected} UNEXPECTED"
        terminalreporter.write_line(f"{report.policy:<{width}}  {counts}  {status}")
        for key in ("pass", "fail", "skip"):
            if report.outcomes[key]:
                names = ", ".join(report.outcomes[key])
                terminalreporter.write_line(f"{'':<{width}}    {key}: {names}")
