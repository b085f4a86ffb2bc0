"""Environments stay apart: each cluster runs its own environment, prod changes in its window.

- The training pipeline in a cluster offers and runs that cluster's environment only: its
  IAM role reaches only that environment's buckets, so the nightly of another would fail.
- Every Application of prod, the root and Argo CD itself included, is inside a sync window of
  its AppProject there; dev and staging have none.
- Charts, values, policies, rules and add-on manifests reach dev from main, and staging and prod
  only through their pins (clusters/<env>/pins.yaml), which trail in that order.
"""

from __future__ import annotations

import re
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml

# --import-mode=importlib leaves this folder off sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from argocd_tree import ROOT, cluster_params, generated_apps, kustomize, render_source

ENVIRONMENTS = ("dev", "staging", "prod")


def environment_parameter(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    (parameter,) = [p for p in parameters if p["name"] == "environment"]
    return parameter


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_pipeline_runs_its_own_clusters_environment(env: str) -> None:
    (app,) = [a for a in generated_apps(env) if a.name == f"churn-workflows-{env}"]
    docs = [d for s in app.sources for d in render_source(s)]
    templates = [d for d in docs if d["kind"] == "WorkflowTemplate"]
    assert {t["metadata"]["name"] for t in templates} >= {
        "churn-train",
        "churn-promote",
        "churn-monitor",
        "churn-outcomes",
    }
    for template in templates:
        parameter = environment_parameter(template["spec"]["arguments"]["parameters"])
        assert parameter["value"] == env, f"{template['metadata']['name']} defaults to another env"
        assert parameter.get("enum") == [env], f"{template['metadata']['name']} offers {parameter}"
    crons = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CronWorkflow"}
    assert set(crons) == {"churn-retrain-nightly", "churn-monitor-daily"}
    for name, cron in crons.items():
        parameter = environment_parameter(cron["spec"]["workflowSpec"]["arguments"]["parameters"])
        assert parameter["value"] == env, f"{name} in {env} runs for {parameter['value']}"


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


# ----------------------------------------------------------------------------- pins
APP_SOURCES = {"churn-api", "churn-workflows"}  # image, model, environment: own pull requests
SHA = re.compile(r"^[0-9a-f]{40}$")


def pins(env: str) -> dict[str, str]:
    document = yaml.safe_load((ROOT / "clusters" / env / "pins.yaml").read_text(encoding="utf-8"))
    data: dict[str, str] = document["data"]
    return data


def chart_versions(env: str) -> dict[str, str]:
    return {
        a.origin.split("/", 1)[1]: s.spec["targetRevision"]
        for a in generated_apps(env)
        for s in a.sources
        if s.chart and a.origin.startswith("ApplicationSet/")
    }


def platform_revisions(env: str) -> dict[str, set[str]]:
    """The Git revision of each app's non-chart sources, the apps' own excluded."""
    found: dict[str, set[str]] = {}
    for app in generated_apps(env):
        if app.name == "root" or app.origin.split("/", 1)[1] in APP_SOURCES:
            continue
        for source in app.sources:
            if not source.chart:
                found.setdefault(app.name, set()).add(source.spec["targetRevision"])
    return found


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text.split("-", maxsplit=1)[0]))


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_run_their_pinned_platform(env: str) -> None:
    pinned = pins(env)
    assert SHA.match(pinned["platform-revision"]), "pin a commit, not a branch"
    charts = chart_versions(env)
    assert charts == {name: pinned[name] for name in charts}, f"{env} charts are not its pins"
    assert set(pinned) == {*charts, "platform-revision"}, "a pin for a chart nobody syncs"
    for app, revisions in platform_revisions(env).items():
        assert revisions == {pinned["platform-revision"]}, f"{env} {app} syncs {revisions}"
    facts = cluster_params(env)["metadata"]["annotations"]
    for app in generated_apps(env):
        if app.origin.split("/", 1)[1] in APP_SOURCES:
            assert {s.spec["targetRevision"] for s in app.sources} == {
                facts["gitops_repo_revision"]
            }


def test_dev_runs_main() -> None:
    assert not (ROOT / "clusters" / "dev" / "pins.yaml").exists()
    revision = cluster_params("dev")["metadata"]["annotations"]["gitops_repo_revision"]
    for app, revisions in platform_revisions("dev").items():
        assert revisions == {revision}, f"dev {app} syncs {revisions}"


def test_a_chart_reaches_dev_then_staging_then_prod() -> None:
    dev, staging, prod = (chart_versions(e) for e in ENVIRONMENTS)
    for chart in dev:
        assert version(prod[chart]) <= version(staging[chart]) <= version(dev[chart]), (
            f"{chart}: dev {dev[chart]}, staging {staging[chart]}, prod {prod[chart]}"
        )


def test_the_pinned_revisions_are_history_of_main() -> None:
    # prod's revision is staging's or older, staging's is main's or older.
    staging, prod = pins("staging")["platform-revision"], pins("prod")["platform-revision"]

    def git(*args: str) -> int:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=False).returncode

    if git("cat-file", "-e", f"{staging}^{{commit}}") or git(
        "cat-file", "-e", f"{prod}^{{commit}}"
    ):
        pytest.skip("the pinned commits are not in this clone (shallow checkout)")
    assert git("merge-base", "--is-ancestor", prod, staging) == 0, "prod is ahead of staging"
    assert git("merge-base", "--is-ancestor", staging, "HEAD") == 0, "staging is not in main"
