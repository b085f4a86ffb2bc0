"""The shared RDS instance's databases exist before the pods that use them start.

OpenTofu's instance holds `mlflow` only. The argo-workflows app runs a Sync hook Job
(`create-databases`, rendered from workflows/src/churn_workflows/databases.py) after the
ExternalSecret with the instance's login and before its own wave 0 (the workflow controller and
its archive database); churn-api and the churn-training steps come in later root waves. Checked
on the rendered Applications: the order, the databases it creates against the names their users
connect to, where its login comes from, and that its pod may reach PostgreSQL.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# --import-mode=importlib leaves this folder off sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from argocd_tree import ROOT, GeneratedApp, cluster_params, generated_apps, render_source

ENVIRONMENTS = ("dev", "staging", "prod")
WAVE = "argocd.argoproj.io/sync-wave"


def app(env: str, prefix: str) -> GeneratedApp:
    (found,) = (a for a in generated_apps(env) if a.name == f"{prefix}-{env}")
    return found


def rendered(found: GeneratedApp) -> list[dict[str, Any]]:
    return [d for source in found.sources for d in render_source(source)]


def wave(document: dict[str, Any]) -> int:
    return int((document["metadata"].get("annotations") or {}).get(WAVE, "0"))


def named(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = (d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name)
    return found


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_hook_runs_after_its_login_and_before_the_archive(env: str) -> None:
    argo = app(env, "argo-workflows")
    documents = rendered(argo)
    hook = named(documents, "Job", "create-databases")
    annotations = hook["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "Sync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    pod = hook["spec"]["template"]["spec"]
    (volume,) = (v["secret"] for v in pod["volumes"] if "secret" in v)
    login = next(
        d
        for d in documents
        if d["kind"] == "ExternalSecret" and d["spec"]["target"]["name"] == volume["secretName"]
    )
    assert login["metadata"]["namespace"] == hook["metadata"]["namespace"]
    assert wave(login) < wave(hook) < 0, "login, then the hook, then the chart (wave 0)"
    # The instance's login: the MLflow entry the cluster Secret names.
    entry = cluster_params(env)["metadata"]["annotations"]["mlflow_db_secret_name"]
    assert [item["extract"]["key"] for item in login["spec"]["dataFrom"]] == [entry]
    assert "sslmode=require" in login["spec"]["target"]["template"]["data"]["url"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_hook_creates_what_the_users_connect_to(env: str) -> None:
    hook = named(rendered(app(env, "argo-workflows")), "Job", "create-databases")
    (container,) = hook["spec"]["template"]["spec"]["containers"]
    created = set(container["args"]) - {"--url-file"}
    archive = yaml.safe_load((ROOT / "platform/apps/argo-workflows/values.yaml").read_text())
    assert archive["controller"]["persistence"]["postgresql"]["database"] in created
    # The prediction store's entry names its database (infra/opentofu/modules/database).
    tofu = (ROOT / "infra/opentofu/modules/database/main.tf").read_text(encoding="utf-8")
    block = tofu.split('resource "aws_secretsmanager_secret_version" "predictions"', 1)[1]
    (dbname,) = re.findall(r'dbname\s*=\s*"([a-z_]+)"', block.split("\n}\n", 1)[0])
    assert dbname in created


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_hook_may_reach_postgresql_and_nothing_reaches_it(env: str) -> None:
    documents = rendered(app(env, "argo-workflows"))
    hook = named(documents, "Job", "create-databases")
    labels = hook["spec"]["template"]["metadata"]["labels"]
    policies = [
        d
        for d in documents
        if d["kind"] == "NetworkPolicy"
        and d["metadata"].get("namespace") == hook["metadata"]["namespace"]
        and (d["spec"]["podSelector"].get("matchLabels") or {}).items() <= labels.items()
    ]
    assert policies, f"{env}: no NetworkPolicy selects the hook's pod"
    ports = {p["port"] for d in policies for r in d["spec"]["egress"] for p in r.get("ports", [])}
    assert 5432 in ports
    assert all(not d["spec"].get("ingress") for d in policies)
    assert all(wave(d) < wave(hook) for d in policies)


def test_the_users_come_after_the_hook() -> None:
    for env in ENVIRONMENTS:
        argo = app(env, "argo-workflows")
        for user in ("churn-api", "churn-workflows"):
            assert app(env, user).wave > argo.wave, f"{env}: {user} before the databases"
