"""HCL formatting: `tofu fmt -check` (or `terraform fmt -check`) over infra/opentofu.

The formatter is a native binary that a fresh machine may lack; the test then skips and
says so, and CI (.github/workflows/opentofu.yaml) runs `tofu fmt -check` for real.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from tofu_hcl import INFRA


def test_hcl_is_formatted() -> None:
    """Every .tf, .tfvars and .tftest.hcl file is in canonical format."""
    binary = shutil.which("tofu") or shutil.which("terraform")
    if binary is None:
        pytest.skip(
            "SKIPPED fmt check: neither tofu nor terraform is on PATH "
            "(install OpenTofu to run it; CI runs `tofu fmt -check`)"
        )
    result = subprocess.run(
        [binary, "fmt", "-check", "-recursive", "-diff", str(INFRA)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"run `{binary} fmt -recursive infra/opentofu`:\n{result.stdout}"
