"""README's "How a change ships" names what really runs: every file, workflow and event exists.

The section is the one place a newcomer learns the release path, abort included; when a
workflow, a script or an event is renamed, this fails instead of the README going stale.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## How a change ships\n")
    return text[start : text.index("\n## ", start + 1)]


def _named() -> set[str]:
    return set(re.findall(r"`([^`\s]+)`", _section()))


def test_every_file_the_section_names_exists() -> None:
    paths = {name for name in _named() if "/" in name and not name.startswith("continuous")}
    workflows = {
        name
        for name in _named()
        if name.endswith(".yaml") and "/" not in name and name != "kustomization.yaml"
    }
    assert paths, "the section names no file"
    missing = [p for p in paths if not (ROOT / p.replace("<env>", "dev")).exists()]
    missing += [w for w in workflows if not (WORKFLOWS / w).exists()]
    assert missing == []


def test_the_abort_is_described_with_the_event_and_the_workflow_that_handles_it() -> None:
    section = _section()
    assert "**A release that fails**" in section
    workflow = yaml.safe_load((WORKFLOWS / "revert-aborted-release.yaml").read_text())
    (event,) = workflow[True]["repository_dispatch"]["types"]
    assert f"`{event}`" in section
    assert "`revert-aborted-release.yaml`" in section
    assert "`.github/scripts/revert_release.py`" in section
    assert "`on-rollout-aborted`" in section


def test_the_promotion_gate_and_the_smoke_load_are_described() -> None:
    named = _named()
    assert ".github/scripts/release_health.py" in named
    assert "churn-api-smoke-load" in named
    gate = (ROOT / ".github" / "scripts" / "release_health.py").read_text()
    assert 'f"continuous-delivery/churn-api-{environment}"' in gate
    assert "continuous-delivery/churn-api-<env>" in named
