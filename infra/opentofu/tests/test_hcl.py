"""Every .tf file parses, every variable and output documents itself, and versions are pinned.

Steps: parse each file with python-hcl2; read the variable/output blocks of every module and
root; check the layout of modules and roots; check the version pins.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tofu_hcl import ENVIRONMENTS, INFRA, MODULES, load_config, load_hcl, tf_files

MODULE_DIRS = [INFRA / "modules" / m for m in MODULES]
ROOT_DIRS = [INFRA / "envs" / e for e in ENVIRONMENTS]
ALL_DIRS = MODULE_DIRS + ROOT_DIRS


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(INFRA)) for p in paths]


@pytest.mark.parametrize("path", tf_files(INFRA), ids=_ids(tf_files(INFRA)))
def test_tf_file_parses(path: Path) -> None:
    """python-hcl2 parses the file (the nearest thing to `tofu validate` without providers)."""
    assert isinstance(load_hcl(path), dict)


@pytest.mark.parametrize("root", ROOT_DIRS, ids=ENVIRONMENTS)
def test_tfvars_parse_and_set_only_declared_variables(root: Path) -> None:
    """terraform.tfvars parses and sets nothing the root does not declare."""
    tfvars = load_hcl(root / "terraform.tfvars")
    declared = set(load_config(root).variables)
    assert set(tfvars) - declared == set()
    required = {n for n, v in load_config(root).variables.items() if "default" not in v}
    assert required - set(tfvars) == set(), "tfvars must set every variable without a default"
    assert tfvars["environment"] == root.name


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_ids(ALL_DIRS))
def test_variables_have_type_and_description(directory: Path) -> None:
    """Every variable has a type and a non-empty description."""
    variables = load_config(directory).variables
    assert variables, f"{directory} declares no variable"
    missing = [
        name
        for name, body in variables.items()
        if not body.get("type") or not str(body.get("description", "")).strip()
    ]
    assert missing == [], f"variables without type or description: {missing}"


@pytest.mark.parametrize("directory", ALL_DIRS, ids=_ids(ALL_DIRS))
def test_outputs_have_description(directory: Path) -> None:
    """Every output has a non-empty description (OpenTofu outputs take no `type`)."""
    outputs = load_config(directory).outputs
    assert outputs, f"{directory} declares no output"
    missing = [n for n, b in outputs.items() if not str(b.get("description", "")).strip()]
    assert missing == [], f"outputs without description: {missing}"
    typed = [n for n, b in outputs.items() if "type" in b]
    assert typed == [], f"`type` is not an output argument in OpenTofu: {typed}"


def test_variables_validate_what_they_can() -> None:
    """Most module variables carry a validation block (free-form ones are listed here)."""
    free_form = {
        ("eks", "vpc_id"),
        ("eks", "tags"),
        ("network", "tags"),
        ("storage", "tags"),
        ("storage", "force_destroy"),
        ("ecr", "tags"),
        ("database", "vpc_id"),
        ("database", "allowed_security_group_ids"),
        ("database", "multi_az"),
        ("database", "deletion_protection"),
        ("database", "tags"),
        ("network", "single_nat_gateway"),
        ("identity", "bucket_kms_key_arn"),
        ("identity", "database_secret_arn"),
        ("identity", "database_kms_key_arn"),
        ("identity", "github_can_push_images"),
        ("eks", "grant_caller_admin"),
        ("ingress", "tags"),
        ("identity", "tags"),
        ("gitops-bridge", "target_revision"),
        ("gitops-bridge", "cluster_annotations"),
    }
    unvalidated = sorted(
        (module, name)
        for module in MODULES
        for name, body in load_config(INFRA / "modules" / module).variables.items()
        if "validation" not in body and (module, name) not in free_form
    )
    assert unvalidated == [], f"add a validation block (or list it as free-form): {unvalidated}"


@pytest.mark.parametrize("module", MODULES)
def test_module_layout(module: str) -> None:
    """A module has main/variables/outputs/versions.tf, a README and a plan-mode test."""
    directory = INFRA / "modules" / module
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (directory / name).is_file(), f"modules/{module}/{name} is missing"
    test = directory / "tests" / f"{module}.tftest.hcl"
    assert test.is_file(), f"modules/{module}/tests/{module}.tftest.hcl is missing"
    text = test.read_text(encoding="utf-8")
    assert re.search(r"^mock_provider \"(aws|helm|kubernetes)\"", text, re.M), (
        "needs a mock_provider"
    )
    runs = re.findall(r"^run \"\w+\" \{\n  command = plan", text, re.M)
    assert runs, "no run block"
    assert len(runs) == text.count("\nrun "), "every run block must be command = plan"


@pytest.mark.parametrize("root", ROOT_DIRS, ids=ENVIRONMENTS)
def test_root_layout(root: Path) -> None:
    """A root has main/variables/outputs/versions/backend.tf and terraform.tfvars."""
    for name in (
        "main.tf",
        "variables.tf",
        "outputs.tf",
        "versions.tf",
        "backend.tf",
        "terraform.tfvars",
    ):
        assert (root / name).is_file(), f"envs/{root.name}/{name} is missing"


@pytest.mark.parametrize("name", ["main.tf", "variables.tf", "outputs.tf", "versions.tf"])
def test_roots_differ_only_in_backend_and_tfvars(name: str) -> None:
    """The roots share one definition (stack/): environments differ in tfvars and the state key."""
    for env in ENVIRONMENTS:
        shared = INFRA / "envs" / env / name
        assert shared.is_symlink(), f"envs/{env}/{name} must link to ../../stack/{name}"
        assert shared.resolve() == (INFRA / "stack" / name).resolve(), f"envs/{env}/{name}"
    backends = {
        e: (INFRA / "envs" / e / "backend.tf").read_text(encoding="utf-8") for e in ENVIRONMENTS
    }
    for env, text in backends.items():
        assert text.replace(f"envs/{env}/", "envs/dev/") == backends["dev"]


@pytest.mark.parametrize("root", ROOT_DIRS, ids=ENVIRONMENTS)
def test_root_pins_opentofu_and_providers_exactly(root: Path) -> None:
    """Roots pin OpenTofu and every provider to one version; modules give ranges."""
    terraform = load_config(root).terraform
    versions = [b for b in terraform if "required_version" in b]
    assert len(versions) == 1
    assert re.fullmatch(r"\d+\.\d+\.\d+", versions[0]["required_version"])
    providers = versions[0]["required_providers"][0]
    assert providers, "no required_providers"
    for name, spec in providers.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", spec["version"]), f"{name} is not pinned exactly"
        assert spec["source"] == f"hashicorp/{name}"


@pytest.mark.parametrize("module", MODULES)
def test_module_constrains_its_providers(module: str) -> None:
    """Modules bound each provider to one major version and state a minimum OpenTofu."""
    terraform = load_config(INFRA / "modules" / module).terraform
    block = next(b for b in terraform if "required_version" in b)
    assert block["required_version"].startswith(">= 1.")
    for name, spec in block["required_providers"][0].items():
        assert re.fullmatch(r">= \d+\.\d+\.\d+, < \d+\.0\.0", spec["version"]), name


@pytest.mark.parametrize("module", MODULES)
def test_module_test_refers_to_what_the_module_declares(module: str) -> None:
    """The .tftest.hcl parses; its variables and the resources its asserts read exist.

    `tofu test` would catch these too, but only where providers can be downloaded.
    """
    directory = INFRA / "modules" / module
    path = directory / "tests" / f"{module}.tftest.hcl"
    parsed = load_hcl(path)
    cfg = load_config(directory)
    set_variables = {k for block in parsed.get("variables", []) for k in block}
    for run in parsed.get("run", []):
        for body in run.values():
            set_variables |= {k for block in body.get("variables", []) for k in block}
    assert set_variables - set(cfg.variables) == set(), "the test sets undeclared variables"
    text = path.read_text(encoding="utf-8")
    declared = {(t, n) for t, named in cfg.resources.items() for n in named}
    referenced = set(re.findall(r"\b((?:aws|helm|kubernetes)_[a-z0-9_]+)\.([a-z0-9_]+)\b", text))
    assert referenced - declared == set(), "asserts read resources the module does not declare"
    for name in re.findall(r"\bvar\.([a-z0-9_]+)", text):
        assert name in cfg.variables, f"var.{name} is not declared"
