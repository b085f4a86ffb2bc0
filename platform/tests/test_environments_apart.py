"""Environments stay apart: each cluster runs its own environment, prod changes in its window.

- The training pipeline in a cluster offers and runs that cluster's environment only: its
  IAM role reaches only that environment's buckets, so the nightly of another would fail.
- Every Application of prod, the root and Argo CD itself included, is inside a sync window of
  its AppProject there; dev and staging have none.
"""

from __future__ import annotations

import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

# --import-mode=importlib leaves this folder off sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from argocd_tree import ROOT, generated_apps, kustomize, render_source

ENVIRONMENTS = ("dev", "staging", "prod")


def environment_parameter(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    (parameter,) = [p for p in parameters if p["name"] == "environment"]
    return parameter


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_pipeline_runs_its_own_clusters_environment(env: str) -> None:
    (app,) = [a for a in generated_apps(env) if a.name == f"churn-workflows-{env}"]
    docs = [d for s in app.sources for d in render_source(s)]
    templates = [d for d in docs if d["kind"] == "WorkflowTemplate"]
    assert {t["metadata"]["name"] for t in templates} >= {"churn-train", "churn-promote"}
    for template in templates:
        parameter = environment_parameter(template["spec"]["arguments"]["parameters"])
        assert parameter["value"] == env, f"{template['metadata']['name']} defaults to another env"
        assert parameter.get("enum") == [env], f"{template['metadata']['name']} offers {parameter}"
    (nightly,) = [d for d in docs if d["kind"] == "CronWorkflow"]
    parameter = environment_parameter(nightly["spec"]["workflowSpec"]["arguments"]["parameters"])
    assert parameter["value"] == env, f"the nightly in {env} retrains {parameter['value']}"


def windows(env: str) -> dict[str, list[dict[str, Any]]]:
    return {
        d["metadata"]["name"]: d["spec"].get("syncWindows") or []
        for d in kustomize(ROOT / "clusters" / env)
        if d["kind"] == "AppProject"
    }


def in_window(app_name: str, project_windows: list[dict[str, Any]]) -> bool:
    return any(
        w["kind"] == "allow" and any(fnmatch(app_name, p) for p in w.get("applications") or [])
        for w in project_windows
    )


def test_every_prod_application_syncs_in_the_window() -> None:
    projects = windows("prod")
    apps = generated_apps("prod")
    assert {"root", "argocd"} <= {a.name for a in apps}
    outside = [a.name for a in apps if not in_window(a.name, projects[a.spec["project"]])]
    assert not outside, f"prod Applications outside every sync window: {outside}"


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_dev_and_staging_sync_at_any_time(env: str) -> None:
    projects = windows(env)
    inside = [a.name for a in generated_apps(env) if in_window(a.name, projects[a.spec["project"]])]
    assert not inside, f"{env} Applications held to prod's window: {inside}"
