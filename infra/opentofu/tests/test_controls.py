"""The CIS EKS 1.4 / EKS best-practices controls hold, and breaking any one fails its check.

Steps: run every control on the real tree; then, per control and per edit that should
break it, copy infra/opentofu to a temporary folder, apply the edit and run the control
on the copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tofu_controls import CONTROLS, Breakage, Control
from tofu_hcl import INFRA


@pytest.mark.parametrize("control", CONTROLS, ids=[c.name for c in CONTROLS])
def test_control_holds(control: Control) -> None:
    """The control holds on the committed tree."""
    assert control.check(INFRA) == []


BREAKAGES = [(c, b) for c in CONTROLS for b in c.breakages]


@pytest.mark.parametrize(
    ("control", "breakage"),
    BREAKAGES,
    ids=[f"{c.name}:{b.file}:{i}" for i, (c, b) in enumerate(BREAKAGES)],
)
def test_breaking_a_control_fails_it(control: Control, breakage: Breakage, tmp_path: Path) -> None:
    """A copy with the control broken is caught, and the message names the problem."""
    copy = tmp_path / "opentofu"
    shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns("tests", ".terraform*"))
    target = copy / breakage.file
    text = target.read_text(encoding="utf-8")
    assert breakage.old in text, (
        f"{breakage.file} no longer contains {breakage.old!r}: update the breakage"
    )
    target.write_text(text.replace(breakage.old, breakage.new), encoding="utf-8")
    problems = control.check(copy)
    assert problems, f"{control.name} did not notice {breakage.old!r} -> {breakage.new!r}"
