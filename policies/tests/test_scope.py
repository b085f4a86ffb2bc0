"""Where each policy denies: only in the namespaces our own workloads run in.

A policy in Deny that reaches an add-on's namespace refuses the upstream chart's Pods (Argo CD
without resources, node-exporter on the host network ...) and, through autogen, Argo CD's own
Deployments: the platform could no longer update itself. So every Deny policy carries a
`namespaceSelector` naming exactly the namespaces of the `churn` AppProject, the add-ons get
an Audit copy of each policy (PolicyReports, no refusal), and the kyverno chart loads the
PolicyExceptions (its default leaves them off).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from kyverno_cel import compile_policy, load_documents, selector_matches
from kyverno_suite import render

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "platform" / "apps" / "kyverno-policies"
ENVS = ("dev", "staging", "prod")
SCOPE_LABEL = "churn-platform/policy-scope"


def project_namespaces(name: str) -> set[str]:
    (project,) = load_documents(REPO / "platform" / "argocd" / "projects" / f"{name}.yaml")
    return {d["namespace"] for d in project["spec"]["destinations"]}


# Our workloads: where the churn project may deploy. The add-ons: the platform project's.
APPLICATION_NAMESPACES = project_namespaces("churn")
ADDON_NAMESPACES = project_namespaces("platform") - APPLICATION_NAMESPACES


def policies(env: str) -> list[dict[str, Any]]:
    return [d for d in render(APP / "overlays" / env) if d["kind"] == "ValidatingPolicy"]


def reaches(policy: dict[str, Any], namespace: str) -> bool:
    selector = policy["spec"]["matchConstraints"].get("namespaceSelector") or {}
    return selector_matches(selector, {"kubernetes.io/metadata.name": namespace})


def test_the_namespaces_are_known() -> None:
    assert {"churn", "churn-training"} <= APPLICATION_NAMESPACES
    assert {"argocd", "monitoring", "kyverno", "argo-rollouts"} <= ADDON_NAMESPACES


@pytest.mark.parametrize("env", ENVS)
def test_every_deny_policy_reaches_only_the_application_namespaces(env: str) -> None:
    problems = []
    for policy in policies(env):
        if "Deny" not in policy["spec"]["validationActions"]:
            continue
        name = policy["metadata"]["name"]
        selector = policy["spec"]["matchConstraints"].get("namespaceSelector")
        expected = {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": sorted(APPLICATION_NAMESPACES),
                }
            ]
        }
        if selector != expected:
            problems.append(f"{name}: namespaceSelector {selector}, expected {expected}")
        problems += [
            f"{name} denies in the add-on namespace {ns}"
            for ns in sorted(ADDON_NAMESPACES)
            if reaches(policy, ns)
        ]
    assert not problems, f"{env}:\n" + "\n".join(problems)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_add_ons_are_audited_by_a_copy_of_every_deny_policy(env: str) -> None:
    by_name = {p["metadata"]["name"]: p for p in policies(env)}
    deny = [p for p in by_name.values() if p["spec"]["validationActions"] == ["Deny"]]
    assert deny, f"{env} denies nothing"
    for policy in deny:
        name = policy["metadata"]["name"]
        twin = by_name.get(f"{name}-addons")
        assert twin is not None, f"{env}: {name} has no Audit copy for the add-ons"
        assert twin["metadata"]["labels"][SCOPE_LABEL] == "addons"
        assert twin["spec"]["validationActions"] == ["Audit"], f"{env}: {name}-addons must audit"
        assert twin["spec"]["validations"] == policy["spec"]["validations"]
        assert all(reaches(twin, ns) for ns in ADDON_NAMESPACES), f"{name}-addons misses add-ons"
        assert not any(reaches(twin, ns) for ns in APPLICATION_NAMESPACES)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_an_add_on_pod_is_reported_not_refused(env: str) -> None:
    # A bad Pod (host network) is refused in churn, and only audited in monitoring.
    by_name = {p["metadata"]["name"]: compile_policy(p) for p in policies(env)}
    (bad,) = [
        d
        for d in load_documents(
            REPO / "policies" / "disallow-host-access" / ".kyverno-test" / "resource.yaml"
        )
        if d["kind"] == "Pod" and d["spec"].get("hostNetwork")
    ][:1]
    for namespace, refused, audited in (("churn", "fail", None), ("monitoring", None, "fail")):
        pod = copy.deepcopy(bad)
        pod["metadata"]["namespace"] = namespace
        deny = by_name["disallow-host-access"].evaluate(pod)
        audit = by_name["disallow-host-access-addons"].evaluate(pod)
        assert (deny.result if deny else None) == refused, f"{env} {namespace}: Deny {deny}"
        assert (audit.result if audit else None) == audited, f"{env} {namespace}: Audit {audit}"


def merged_values(paths: list[Path]) -> dict[str, Any]:
    def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in top.items():
            out[key] = (
                merge(out[key], value)
                if isinstance(value, dict) and isinstance(out.get(key), dict)
                else value
            )
        return out

    values: dict[str, Any] = {}
    for path in paths:
        if path.is_file():
            values = merge(values, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return values


@pytest.mark.parametrize("env", ENVS)
def test_kyverno_loads_the_policy_exceptions(env: str) -> None:
    values = merged_values(
        [
            REPO / "platform/apps/kyverno/values.yaml",
            REPO / f"platform/apps/kyverno/values-{env}.yaml",
            REPO / f"clusters/{env}/values/kyverno.yaml",
        ]
    )
    feature = (values.get("features") or {}).get("policyExceptions") or {}
    assert feature.get("enabled") is True, f"{env}: features.policyExceptions.enabled is off"
    namespaces = {
        d["metadata"]["namespace"]
        for d in render(APP / "overlays" / env)
        if d["kind"] == "PolicyException"
    }
    assert namespaces == {feature.get("namespace")}, (
        f"{env}: exceptions live in {namespaces}, Kyverno reads {feature.get('namespace')!r}"
    )
