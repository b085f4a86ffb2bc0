"""A fresh cluster converges in order: every custom resource after the app that defines it.

The root Application syncs `clusters/<env>` in sync waves, and (with the ApplicationSet health
of platform/argocd/values.yaml) waits between waves until each ApplicationSet's Applications are
Synced and Healthy. So an app may use a custom resource kind only if an app of an earlier wave
installs its CRD, or if it installs the CRD itself and skips the dry run of what is missing.

What an app uses comes from the rendered tree: the custom resources of its Git sources (with
the Application's kustomize patches), and for a chart the CRs its merged values turn on
(`serviceMonitor.enabled`, `prometheusRule.enabled`). What a chart provides is the table below,
read from the pinned charts' `crds/` and templates.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

# --import-mode=importlib leaves this folder off sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from argocd_tree import ROOT, GeneratedApp, generated_apps, render_source

ENVIRONMENTS = ("dev", "staging", "prod")
ANY = "*"
# The CRDs each pinned chart installs: (API group, kind), "*" for every kind of the group.
CHART_CRDS: dict[str, set[tuple[str, str]]] = {
    "argo-cd": {("argoproj.io", k) for k in ("Application", "ApplicationSet", "AppProject")},
    "argo-rollouts": {
        ("argoproj.io", k)
        for k in (
            "Rollout",
            "AnalysisTemplate",
            "ClusterAnalysisTemplate",
            "AnalysisRun",
            "Experiment",
        )
    },
    "argo-workflows": {
        ("argoproj.io", k)
        for k in (
            "Workflow",
            "WorkflowTemplate",
            "ClusterWorkflowTemplate",
            "CronWorkflow",
            "WorkflowTaskResult",
            "WorkflowTaskSet",
            "WorkflowEventBinding",
            "WorkflowArtifactGCTask",
        )
    },
    "kube-prometheus-stack": {("monitoring.coreos.com", ANY)},
    "kyverno": {
        ("kyverno.io", ANY),
        ("policies.kyverno.io", ANY),
        ("reports.kyverno.io", ANY),
        ("wgpolicyk8s.io", ANY),
    },
    "external-secrets": {("external-secrets.io", ANY), ("generators.external-secrets.io", ANY)},
    "aws-load-balancer-controller": {("elbv2.k8s.aws", ANY)},
}
# Value switches that make a chart render a custom resource.
CHART_SWITCHES = {
    "serviceMonitor": ("monitoring.coreos.com", "ServiceMonitor"),
    "prometheusRule": ("monitoring.coreos.com", "PrometheusRule"),
}
# argo-cd 8.5.0 renders its ServiceMonitors only when the cluster serves
# monitoring.coreos.com/v1 (`.Capabilities.APIVersions.Has`), so it never waits for the CRD.
CAPABILITY_GUARDED = {"argo-cd"}
# OpenTofu installs the argo-cd chart (and so its CRDs) before the root exists.
BOOTSTRAP_CHART = "argo-cd"


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def is_custom(group: str) -> bool:
    return "." in group and not group.endswith(".k8s.io")


def provides(app: GeneratedApp) -> set[tuple[str, str]]:
    return {crd for s in app.sources if s.chart for crd in CHART_CRDS.get(s.chart, set())}


def covers(provided: set[tuple[str, str]], used: tuple[str, str]) -> bool:
    return used in provided or (used[0], ANY) in provided


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def chart_values(app: GeneratedApp, source_spec: dict[str, Any]) -> dict[str, Any]:
    helm = source_spec.get("helm") or {}
    values: dict[str, Any] = {}
    for value_file in helm.get("valueFiles") or []:
        path = ROOT / str(value_file).partition("/")[2]
        if path.is_file():
            values = _merge(values, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return _merge(values, helm.get("valuesObject") or {})


def switched_on(values: Any) -> Iterator[tuple[str, str]]:
    if isinstance(values, dict):
        for key, value in values.items():
            if key in CHART_SWITCHES and isinstance(value, dict) and value.get("enabled") is True:
                yield CHART_SWITCHES[key]
            yield from switched_on(value)
    elif isinstance(values, list):
        for value in values:
            yield from switched_on(value)


def uses(app: GeneratedApp) -> set[tuple[str, str]]:
    used: set[tuple[str, str]] = set()
    for source in app.sources:
        if source.chart and source.chart not in CAPABILITY_GUARDED:
            used |= set(switched_on(chart_values(app, source.spec)))
        for document in render_source(source):
            group = group_of(str(document.get("apiVersion", "")))
            if is_custom(group):
                used.add((group, str(document["kind"])))
    return used


def order_problems(apps: list[GeneratedApp]) -> list[str]:
    """Every custom resource kind used before (or without) the app that installs its CRD."""
    bootstrap = CHART_CRDS[BOOTSTRAP_CHART]
    problems = []
    for app in apps:
        for used in sorted(uses(app)):
            if covers(bootstrap, used):
                continue
            providers = [a for a in apps if covers(provides(a), used)]
            if not providers:
                problems.append(f"{app.name}: nothing installs the CRD of {used[1]} ({used[0]})")
                continue
            earlier = [p for p in providers if p.wave < app.wave]
            itself = app in providers and "SkipDryRunOnMissingResource=true" in app.sync_options
            if not earlier and not itself:
                names = ", ".join(f"{p.name} (wave {p.wave})" for p in providers)
                problems.append(
                    f"{app.name} (wave {app.wave}) uses {used[1]} ({used[0]}) "
                    f"before its provider {names}"
                )
    return problems


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def apps(request: pytest.FixtureRequest) -> list[GeneratedApp]:
    return generated_apps(request.param)


def test_every_custom_resource_comes_after_its_crd(apps: list[GeneratedApp]) -> None:
    problems = order_problems(apps)
    assert not problems, "\n".join(problems)
    # Not vacuous: the service's Rollout, its ServiceMonitor and the WorkflowTemplates count.
    every_use = set().union(*(uses(a) for a in apps))
    assert ("argoproj.io", "Rollout") in every_use
    assert ("argoproj.io", "WorkflowTemplate") in every_use
    assert ("monitoring.coreos.com", "ServiceMonitor") in every_use


def test_a_consumer_in_the_same_wave_as_its_provider_is_caught(apps: list[GeneratedApp]) -> None:
    # The order of the tree before this fix: the operators and their ServiceMonitors in one wave.
    same_wave = [GeneratedApp(a.name, -2 if a.wave < 0 else a.wave, a.origin, a.spec) for a in apps]
    problems = order_problems(same_wave)
    assert any("uses ServiceMonitor (monitoring.coreos.com) before" in p for p in problems)


def test_every_app_retries_with_backoff_and_skips_dry_run_for_missing_kinds(
    apps: list[GeneratedApp],
) -> None:
    for app in apps:
        retry = (app.spec.get("syncPolicy") or {}).get("retry") or {}
        assert retry.get("limit", 0) < 0 or retry.get("limit", 0) >= 10, f"{app.name}: {retry}"
        backoff = retry.get("backoff") or {}
        assert backoff.get("factor", 1) > 1, f"{app.name}: {retry}"
        assert backoff.get("maxDuration"), f"{app.name}: {retry}"
        custom = {u for u in uses(app) if not covers(CHART_CRDS[BOOTSTRAP_CHART], u)}
        if custom:
            assert "SkipDryRunOnMissingResource=true" in app.sync_options, (
                f"{app.name} uses {sorted(custom)} without SkipDryRunOnMissingResource"
            )


def test_the_root_waits_for_each_applicationsets_applications() -> None:
    values = yaml.safe_load((ROOT / "platform/argocd/values.yaml").read_text(encoding="utf-8"))
    health = values["configs"]["cm"]["resource.customizations.health.argoproj.io_ApplicationSet"]
    # Healthy only from the generated Applications' own sync and health, never from generation.
    assert "obj.status.resources" in health
    assert 'r.health.status ~= "Healthy"' in health
    assert 'r.status ~= "Synced"' in health
    assert '"Degraded"' in health


def test_waves_sit_on_what_the_root_holds(apps: list[GeneratedApp]) -> None:
    # A wave inside an ApplicationSet's template orders nothing (its Applications are not the
    # root's); only the ApplicationSets themselves carry one.
    for path in sorted(Path(ROOT / "platform/apps").glob("*/applicationset.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        template_annotations = document["spec"]["template"]["metadata"].get("annotations") or {}
        assert "argocd.argoproj.io/sync-wave" not in template_annotations, path
        assert "argocd.argoproj.io/sync-wave" in document["metadata"]["annotations"], path
    assert len({a.wave for a in apps}) >= 5
