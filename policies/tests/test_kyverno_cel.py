"""The evaluator and the suite runner themselves: autogen as Kyverno does it, and bad input.

A broken fixture or policy must make `make test` fail naming what is wrong: a fixture expected
to fail that passes, a policy no fixture exercises, a rule no failing fixture violates, a CEL
syntax error, a function the engine lacks, an exception without its reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kyverno_cel import PolicyError, autogen_rewrite, compile_policy, load_exceptions
from kyverno_suite import run_suite

POLICIES = Path(__file__).resolve().parents[1]


def policy(validations: list[dict[str, str]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policies.kyverno.io/v1",
        "kind": "ValidatingPolicy",
        "metadata": {"name": "sample"},
        "spec": {
            "validationActions": ["Audit"],
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ]
            },
            "validations": validations,
            **spec,
        },
    }


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "churn", "labels": {"tier": "web"}},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "churn"},
    "spec": {"template": {"metadata": POD["metadata"], "spec": POD["spec"]}},
}
CRONJOB = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {"name": "web", "namespace": "churn"},
    "spec": {"jobTemplate": {"spec": {"template": {"spec": POD["spec"]}}}},
}


def test_autogen_rewrites_like_kyverno() -> None:
    source = "object.spec.containers + oldObject.spec.x + object.metadata.labels"
    assert autogen_rewrite(source, "defaults") == (
        "object.spec.template.spec.containers + oldObject.spec.template.spec.x"
        " + object.spec.template.metadata.labels"
    )
    assert autogen_rewrite("object.spec.containers", "cronjobs") == (
        "object.spec.jobTemplate.spec.template.spec.containers"
    )
    # The controller keeps its own name and namespace, as Kyverno's protected suffixes do.
    assert autogen_rewrite("object.metadata.namespace", "defaults") == "object.metadata.namespace"


def test_a_pod_policy_applies_to_pod_controllers_through_autogen() -> None:
    compiled = compile_policy(policy([{"expression": "object.spec.containers.size() == 2"}]))
    for resource in (POD, DEPLOYMENT, CRONJOB):
        outcome = compiled.evaluate(resource)
        assert outcome is not None
        assert outcome.result == "fail", resource["kind"]
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}
    assert compiled.evaluate(service) is None


def test_autogen_follows_the_configured_controllers_and_guards_match_conditions() -> None:
    compiled = compile_policy(
        policy(
            [{"expression": "false"}],
            autogen={"podControllers": {"controllers": ["deployments"]}},
            matchConditions=[{"name": "web", "expression": "object.metadata.labels.tier == 'web'"}],
        )
    )
    assert compiled.autogen_kinds == ("Deployment",)
    assert compiled.evaluate(CRONJOB) is None
    outcome = compiled.evaluate(DEPLOYMENT)
    assert outcome is not None
    assert outcome.result == "fail"


def test_a_cel_syntax_error_names_the_policy_and_expression() -> None:
    with pytest.raises(
        PolicyError, match=r"sample validations\[0\]: cannot compile 'object.spec.\?x'"
    ):
        compile_policy(policy([{"expression": "object.spec.?x"}]))


def test_a_function_the_engine_lacks_is_an_error_not_a_verdict() -> None:
    compiled = compile_policy(
        policy([{"expression": "image.Parse(object.spec.containers[0].image) != null"}])
    )
    outcome = compiled.evaluate(POD)
    assert outcome is not None
    assert outcome.result == "error"
    assert "Parse" in outcome.detail


def test_a_missing_field_is_an_error_naming_the_expression() -> None:
    compiled = compile_policy(policy([{"expression": "object.spec.securityContext.runAsNonRoot"}]))
    outcome = compiled.evaluate(POD)
    assert outcome is not None
    assert outcome.result == "error"
    assert "object.spec.securityContext.runAsNonRoot" in outcome.detail


def test_an_exception_must_say_why() -> None:
    exception = {
        "apiVersion": "policies.kyverno.io/v1",
        "kind": "PolicyException",
        "metadata": {"name": "silent"},
        "spec": {
            "policyRefs": [{"name": "sample", "kind": "ValidatingPolicy"}],
            "matchConditions": [{"name": "all", "expression": "true"}],
        },
    }
    with pytest.raises(PolicyError, match=r"silent: .*must give the reason"):
        load_exceptions([exception])


def copy_policy(tmp_path: Path, name: str) -> Path:
    shutil.copytree(POLICIES / name, tmp_path / name)
    return tmp_path / name / f"{name}.yaml"


def edit_test(policy_file: Path, change: Callable[[dict[str, Any]], object]) -> None:
    path = policy_file.parent / ".kyverno-test" / "kyverno-test.yaml"
    test = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(test)
    path.write_text(yaml.safe_dump(test), encoding="utf-8")


def test_a_fixture_expected_to_fail_that_passes_fails_the_suite(tmp_path: Path) -> None:
    policy_file = copy_policy(tmp_path, "disallow-latest-tag")
    edit_test(policy_file, lambda t: t["results"][1]["resources"].append("goodpod01"))
    problems = "\n".join(run_suite(policy_file).problems)
    assert "disallow-latest-tag: fixture Pod/goodpod01 expected fail, got pass" in problems
    assert "no longer exercises the policy" in problems


def test_a_fixture_expected_to_pass_that_fails_names_the_rule(tmp_path: Path) -> None:
    policy_file = copy_policy(tmp_path, "require-probes")
    edit_test(policy_file, lambda t: t["results"][0]["resources"].append("badpod02"))
    problems = "\n".join(run_suite(policy_file).problems)
    assert "require-probes: fixture Pod/badpod02 expected pass, got fail" in problems
    assert "rule validations[1] (Every container must have a livenessProbe.)" in problems


def test_a_policy_without_fixtures_fails_the_suite(tmp_path: Path) -> None:
    policy_file = copy_policy(tmp_path, "require-ro-rootfs")
    shutil.rmtree(policy_file.parent / ".kyverno-test")
    assert run_suite(policy_file).problems == [
        "require-ro-rootfs: no fixture exercises it "
        "(require-ro-rootfs/.kyverno-test/kyverno-test.yaml is missing)"
    ]


def test_a_rule_no_failing_fixture_violates_fails_the_suite(tmp_path: Path) -> None:
    policy_file = copy_policy(tmp_path, "require-probes")
    # Keep only the fixtures that miss a readiness probe: the liveness rule goes unexercised.
    edit_test(policy_file, lambda t: t["results"][1].update(resources=["badpod01"]))
    problems = run_suite(policy_file).problems
    assert any(
        "fixture Pod/badpod02 is in the resources but no result checks it" in p for p in problems
    )
    assert any(
        "rule validations[1] (Every container must have a livenessProbe.) is never exercised" in p
        for p in problems
    )


def test_a_result_naming_a_missing_fixture_fails_the_suite(tmp_path: Path) -> None:
    policy_file = copy_policy(tmp_path, "require-probes")
    edit_test(policy_file, lambda t: t["results"][1]["resources"].append("badpod99"))
    assert (
        "require-probes: fixture Pod/badpod99 is not in the test's resources"
        in run_suite(policy_file).problems
    )


def test_a_fixture_file_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    policy_file = copy_policy(tmp_path, "require-probes")
    (policy_file.parent / ".kyverno-test" / "resource.yaml").write_text(
        "---\nkind: Pod\n  metadata: [\n", encoding="utf-8"
    )
    (problem,) = run_suite(policy_file).problems
    assert problem.startswith("require-probes: cannot read its policy or fixtures (")
    assert "resource.yaml" in problem


def test_a_fixture_without_a_name_is_named(tmp_path: Path) -> None:
    policy_file = copy_policy(tmp_path, "require-probes")
    (policy_file.parent / ".kyverno-test" / "resource.yaml").write_text(
        "---\napiVersion: v1\nkind: Pod\nmetadata: {}\n", encoding="utf-8"
    )
    problems = run_suite(policy_file).problems
    assert problems[0] == (
        "require-probes: document 0 of resource.yaml has no kind or metadata.name"
    )
