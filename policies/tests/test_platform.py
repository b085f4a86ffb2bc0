"""Our own rendered platform passes our own policies: no surprise at admission.

For each environment, render with the real `kubectl kustomize` what Argo CD syncs there: the
cluster's root path clusters/<env> and every Git path its Applications and ApplicationSets
name (the churn-api overlay, the Hera-rendered workflows, the addons' manifests ...), the
ApplicationSet templates filled from the environment's cluster Secret (fixture). Helm charts
go through the chart job instead (policies/ci/addon_charts.py, in GitHub Actions); a test
here checks that its plan covers every chart source. Then evaluate every policy of that
environment's overlay (autogen included) on every resource. A resource may fail only where a
PolicyException covers it, and every exception says why.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from kyverno_cel import compile_policy, load_exceptions
from kyverno_suite import render

REPO = Path(__file__).resolve().parents[2]
ENVS = ("dev", "staging", "prod")
sys.path.insert(0, str(REPO / "platform" / "tests"))
sys.path.insert(0, str(REPO / "policies" / "ci"))

from addon_charts import plan  # noqa: E402
from argocd_tree import generated_apps, render_source  # noqa: E402


def synced_paths(env: str) -> tuple[list[str], list[str]]:
    """The Git paths Argo CD syncs to `env` (clusters/<env> and those its Applications name),
    and the named paths that do not render because they hold no kustomization yet."""
    paths, missing = [f"clusters/{env}"], []
    for app in generated_apps(env):
        for source in app.sources:
            if source.path is None or source.path in paths or source.path in missing:
                continue
            target = REPO / source.path / "kustomization.yaml"
            (paths if target.is_file() else missing).append(source.path)
    return paths, missing


def rendered_platform(env: str) -> list[dict[str, Any]]:
    """Every resource the root and the Applications of `env` sync from Git, as Argo CD
    renders it (the Application's own kustomize patches included)."""
    resources = render(REPO / "clusters" / env)
    for app in generated_apps(env):
        for source in app.sources:
            if source.path is not None and (REPO / source.path / "kustomization.yaml").is_file():
                resources += render_source(source)
    return resources


@pytest.mark.parametrize("env", ENVS)
def test_every_chart_source_goes_through_the_chart_job(env: str) -> None:
    # Helm charts cannot be rendered here (no chart repositories); GitHub Actions renders each
    # with `helm template` and applies the policies (policies/ci/addon_charts.py). The job's
    # plan must name every chart source of the environment, at its pinned version.
    charts = {
        (app.name, s.spec["repoURL"], s.chart, s.spec["targetRevision"])
        for app in generated_apps(env)
        for s in app.sources
        if s.chart
    }
    planned = {(j.app, j.repo, j.chart, j.version) for j in plan(env)}
    assert charts, f"{env}: no chart source found"
    assert planned == charts
    workflow = (REPO / ".github" / "workflows" / "policies-charts.yaml").read_text(encoding="utf-8")
    assert "policies/ci/addon_charts.py run" in workflow
    assert "env: [dev, staging, prod]" in workflow


@pytest.mark.parametrize("env", ENVS)
def test_rendered_platform_passes_every_policy(env: str) -> None:
    resources = rendered_platform(env)
    # The policies as the environment's Application syncs them (cluster facts patched in).
    (policy_app,) = [a for a in generated_apps(env) if a.name == f"kyverno-policies-{env}"]
    policy_documents = [d for s in policy_app.sources for d in render_source(s)]
    policies = [compile_policy(d) for d in policy_documents if d["kind"] == "ValidatingPolicy"]
    exceptions = load_exceptions(policy_documents)
    violations: list[str] = []
    checked: dict[str, int] = {p.name: 0 for p in policies}
    for resource in resources:
        where = "{}/{}/{}".format(
            resource["kind"],
            resource.get("metadata", {}).get("namespace", "-"),
            resource.get("metadata", {}).get("name"),
        )
        for policy in policies:
            outcome = policy.evaluate(resource, context_resources=resources, exceptions=exceptions)
            if outcome is None:
                continue
            checked[policy.name] += 1
            if outcome.result == "error":
                violations.append(f"{policy.name} on {where}: {outcome.detail}")
            elif outcome.result == "fail":
                rules = "; ".join(
                    f"validations[{i}] {m}"
                    for i, m in zip(outcome.failed, outcome.messages, strict=True)
                )
                violations.append(f"{policy.name} on {where}: {rules}")
    assert not violations, f"{env}: admission would refuse or report:\n" + "\n".join(violations)
    _, missing = synced_paths(env)
    assert not missing, f"{env}: synced paths without a kustomization.yaml: {missing}"
    # Not vacuous: the service's pod template and the training pipeline were both checked.
    assert checked["require-model-pin"] >= 1, f"{env}: no churn-api pod template was rendered"
    assert checked["require-workflow-hardening"] >= 1, f"{env}: no WorkflowTemplate was rendered"
    assert checked["require-network-policy"] >= 1, f"{env}: no workload in an application namespace"


@pytest.mark.parametrize("env", ENVS)
def test_cluster_syncs_the_policies_the_service_and_the_workflows(env: str) -> None:
    paths, _ = synced_paths(env)
    for path in (
        f"platform/apps/kyverno-policies/overlays/{env}",
        f"platform/apps/churn-api/overlays/{env}",
        f"platform/apps/churn-workflows/overlays/{env}",
    ):
        assert path in paths, f"clusters/{env} syncs no Application with path {path}"


@pytest.mark.parametrize("env", ENVS)
def test_every_application_namespace_has_a_network_policy(env: str) -> None:
    # Pods the controllers create later (Rollout ReplicaSets, workflow steps) meet
    # require-network-policy at admission: the NetworkPolicy must ship with the namespace.
    resources = rendered_platform(env)
    namespaces = {
        r["metadata"]["name"] if r["kind"] == "Namespace" else r["metadata"].get("namespace", "")
        for r in resources
    }
    application = {ns for ns in namespaces if ns == "churn" or ns.startswith("churn-")}
    covered = {r["metadata"].get("namespace") for r in resources if r["kind"] == "NetworkPolicy"}
    assert application, f"{env}: no application namespace rendered"
    assert not application - covered, (
        f"{env}: application namespaces without a NetworkPolicy: {sorted(application - covered)}"
    )
