"""The generated inputs/outputs tables in the module READMEs match the HCL."""

from __future__ import annotations

import pytest
import tofu_docs
from tofu_hcl import INFRA, MODULES


@pytest.mark.parametrize("module", MODULES)
def test_module_readme_tables_in_sync(module: str) -> None:
    """README.md's TF_DOCS block is what tofu_docs.py renders from variables.tf/outputs.tf."""
    directory = INFRA / "modules" / module
    current = (directory / "README.md").read_text(encoding="utf-8")
    assert current == tofu_docs.updated_readme(directory), (
        f"modules/{module}/README.md is stale: "
        "run `.venv/bin/python infra/opentofu/tests/tofu_docs.py`"
    )


def test_readme_states_bootstrap_costs_and_destroy() -> None:
    """infra/opentofu/README.md covers the first boot, costs with dated prices, the sandbox
    apply, disaster recovery and destroy."""
    text = (INFRA / "README.md").read_text(encoding="utf-8")
    for heading in (
        "## First boot",
        "### Reaching the private API endpoint",
        "## Cost",
        "## Sandbox apply",
        "## Disaster recovery",
        "## Destroy",
    ):
        assert heading in text, f"README.md lacks {heading}"
    for env in ("dev", "staging", "prod"):
        assert f"| {env} |" in text, f"the cost table lacks {env}"
