"""Every policy against its .kyverno-test fixtures, and the policy folder's layout.

Each policy's CEL is evaluated on the fixtures its kyverno-test.yaml names and must give the
result it expects; the suite also fails when a fixture or a rule is never exercised. The layout
tests keep policies/kustomization.yaml, the folder names and the fixtures in step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from kyverno_cel import load_documents
from kyverno_suite import SuiteReport, discover_policies, run_suite

POLICIES = Path(__file__).resolve().parents[1]
POLICY_FILES = discover_policies(POLICIES)
# Every control of the Pod Security Standards (restricted includes baseline), and the policy
# rule (validation index) that enforces it; the suites prove each rule has a failing fixture.
PSS_RESTRICTED = {
    "HostProcess": ("disallow-host-access", 3),
    "Host Namespaces": ("disallow-host-access", 0),
    "Privileged Containers": ("restrict-privileges", 0),
    "Capabilities (baseline)": ("require-drop-all-capabilities", 1),
    "HostPath Volumes": ("disallow-host-access", 1),
    "Host Ports": ("disallow-host-access", 2),
    "Host Probes / Lifecycle Hooks": ("disallow-host-access", 4),
    "AppArmor": ("restrict-security-profiles", 1),
    "SELinux": ("restrict-security-profiles", 2),
    "/proc Mount Type": ("restrict-privileges", 2),
    "Seccomp": ("restrict-security-profiles", 0),
    "Sysctls": ("restrict-security-profiles", 3),
    "Volume Types": ("restrict-volume-types", 0),
    "Privilege Escalation": ("restrict-privileges", 1),
    "Running as Non-root": ("require-run-as-non-root", 0),
    "Running as Non-root user": ("require-run-as-non-root", 1),
    "Capabilities (restricted)": ("require-drop-all-capabilities", 0),
}


def test_every_policy_folder_is_found() -> None:
    folders = sorted(
        p.name
        for p in POLICIES.iterdir()
        if p.is_dir() and p.name not in {"tests", "exceptions", "ci"}
    )
    assert [p.parent.name for p in POLICY_FILES] == folders, (
        "every folder under policies/ must hold <name>/<name>.yaml with a ValidatingPolicy"
    )
    assert len(POLICY_FILES) >= 16


@pytest.mark.parametrize("policy_file", POLICY_FILES, ids=[p.stem for p in POLICY_FILES])
def test_fixtures_give_the_expected_results(
    policy_file: Path, record_suite: Callable[[SuiteReport], None]
) -> None:
    report = run_suite(policy_file)
    record_suite(report)
    assert not report.problems, "\n".join(report.problems)


def test_kustomization_lists_every_policy_and_exception_and_no_fixture() -> None:
    kustomization = yaml.safe_load((POLICIES / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = kustomization["resources"]
    expected = [str(p.relative_to(POLICIES)) for p in POLICY_FILES] + sorted(
        str(p.relative_to(POLICIES)) for p in (POLICIES / "exceptions").glob("*.yaml")
    )
    assert sorted(listed) == sorted(expected)
    assert not [entry for entry in listed if ".kyverno-test" in entry]


def test_every_policy_is_a_cel_validating_policy_in_audit() -> None:
    for policy_file in POLICY_FILES:
        (policy,) = load_documents(policy_file)
        assert policy["apiVersion"] == "policies.kyverno.io/v1", policy_file
        assert policy["spec"]["validationActions"] == ["Audit"], (
            f"{policy_file.stem}: the base says Audit; overlays/<env> turns it into Deny"
        )
        assert policy["metadata"]["annotations"]["policies.kyverno.io/description"].strip()


@pytest.mark.parametrize("control", sorted(PSS_RESTRICTED))
def test_every_pod_security_control_has_a_rule(control: str) -> None:
    name, index = PSS_RESTRICTED[control]
    (policy,) = load_documents(POLICIES / name / f"{name}.yaml")
    validations = policy["spec"]["validations"]
    assert index < len(validations), f"{control}: {name} has no validations[{index}]"
    assert policy["metadata"]["annotations"]["policies.kyverno.io/category"] == (
        "Pod Security Standards (Restricted)"
    )


def test_every_exception_is_exercised_by_a_skip_fixture() -> None:
    used = set().union(*(run_suite(p).exceptions_used for p in POLICY_FILES))
    exceptions = {p.stem for p in (POLICIES / "exceptions").glob("*.yaml")}
    assert not exceptions - used, f"no fixture is skipped by: {sorted(exceptions - used)}"
