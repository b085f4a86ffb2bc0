"""checkov (terraform framework, --skip-download) passes on every root; skips live in one place."""

from __future__ import annotations

import re

import pytest
from tofu_checkov import CheckovReport, checkov_skips
from tofu_hcl import INFRA, ROOTS


@pytest.mark.parametrize("env", ROOTS)
def test_checkov_passes(env: str, checkov_reports: dict[str, CheckovReport]) -> None:
    """No failed check and no parsing error in envs/<env> and the modules it calls."""
    report = checkov_reports[env]
    assert report.parsing_errors == 0
    assert report.passed > 0, "checkov scanned nothing"
    assert report.failures == [], "\n".join(report.failures)


def test_every_skip_is_justified_in_one_place() -> None:
    """No inline `checkov:skip`; each ID in .checkov.yaml has a comment above it."""
    inline = [
        str(p.relative_to(INFRA))
        for p in INFRA.rglob("*.tf")
        if "checkov:skip" in p.read_text(encoding="utf-8")
    ]
    assert inline == [], f"move these skips into .checkov.yaml: {inline}"
    lines = (INFRA / ".checkov.yaml").read_text(encoding="utf-8").splitlines()
    skips = checkov_skips()
    assert skips, "no skip-check list"
    for check_id in skips:
        index = next(i for i, line in enumerate(lines) if line.strip() == f"- {check_id}")
        above = lines[index - 1].strip()
        assert above.startswith("#") or re.fullmatch(r"- CKV2?_AWS_\d+", above), (
            f"{check_id} has no justification comment above it"
        )
