"""People and Argo CD get in safely; the credentials they need live in Git as ExternalSecrets.

- The Argo CD dashboard and the Argo Workflows UI sign people in through OIDC; there is no
  shared admin account; the identity provider's groups grant read-only or operator rights, and
  operators cannot change what Git declares.
- Argo CD reads the repository with a GitHub App's credentials, and both OIDC clients read
  theirs, from Secrets Manager entries under the environment's prefix (External Secrets); the
  entries are named in platform/argocd/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# --import-mode=importlib leaves this folder off sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from argocd_tree import ROOT, cluster_params, generated_apps, render_source

ENVIRONMENTS = ("dev", "staging", "prod")
GROUPS = {"churn-platform-readers", "churn-platform-operators"}
ENTRIES = ("github/argocd-repository", "sso/argocd", "sso/argo-workflows", "github/churn-workflows")


def argocd_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(
        (ROOT / "platform/argocd/values.yaml").read_text(encoding="utf-8")
    )
    return values


def rendered(env: str, app: str) -> list[dict[str, Any]]:
    (found,) = [a for a in generated_apps(env) if a.name == f"{app}-{env}"]
    return [d for s in found.sources for d in render_source(s)]


def external_secrets(env: str) -> dict[str, dict[str, Any]]:
    docs = rendered(env, "external-secrets") + rendered(env, "argo-workflows")
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "ExternalSecret"}


def test_argocd_signs_in_through_oidc_without_an_admin_account() -> None:
    cm = argocd_values()["configs"]["cm"]
    assert cm["admin.enabled"] == "false"
    oidc = yaml.safe_load(cm["oidc.config"])
    assert oidc["issuer"].startswith("https://")
    assert oidc["clientID"] == "$argocd-oidc:client-id"
    assert oidc["clientSecret"] == "$argocd-oidc:client-secret"
    assert "groups" in oidc["requestedScopes"]


def test_argocd_roles_come_from_groups_and_operators_cannot_edit() -> None:
    rbac = argocd_values()["configs"]["rbac"]
    assert rbac["policy.default"] == "", "everyone would get a role without a group"
    lines = [line.split(", ") for line in rbac["policy.csv"].splitlines() if line.strip()]
    grants = {(g[1], g[2]) for g in lines if g[0] == "g"}
    assert grants == {
        ("churn-platform-operators", "role:operator"),
        ("churn-platform-readers", "role:readonly"),
    }
    verbs = {(p[2], p[3]) for p in lines if p[0] == "p" and p[1] == "role:operator"}
    assert ("applications", "sync") in verbs
    assert ("applications", "action/*") in verbs
    for forbidden in ("create", "update", "delete", "override", "*"):
        assert ("applications", forbidden) not in verbs


def test_argo_workflows_signs_in_through_oidc_with_group_rules() -> None:
    values = yaml.safe_load(
        (ROOT / "platform/apps/argo-workflows/values.yaml").read_text(encoding="utf-8")
    )
    server = values["server"]
    assert server["authModes"] == ["sso"]
    assert server["sso"]["rbac"]["enabled"] is True
    assert server["sso"]["clientSecret"]["name"] == "argo-workflows-sso"
    docs = rendered("dev", "argo-workflows")
    accounts = {
        d["metadata"]["name"]: d["metadata"]["annotations"]["workflows.argoproj.io/rbac-rule"]
        for d in docs
        if d["kind"] == "ServiceAccount" and d["metadata"]["namespace"] == "argo"
    }
    assert {g for rule in accounts.values() for g in GROUPS if f"'{g}'" in rule} == GROUPS
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Role"}
    reader_verbs = {v for rule in roles["workflows-reader"]["rules"] for v in rule["verbs"]}
    assert reader_verbs == {"get", "list", "watch"}
    operator = roles["workflows-operator"]["rules"]
    assert any("workflows" in r["resources"] and "create" in r["verbs"] for r in operator)
    assert not any(
        "workflowtemplates" in r["resources"] and "update" in r["verbs"] for r in operator
    )
    tokens = {
        d["metadata"]["annotations"]["kubernetes.io/service-account.name"]
        for d in docs
        if d["kind"] == "Secret" and d["type"] == "kubernetes.io/service-account-token"
    }
    assert tokens == set(accounts)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_credentials_come_from_the_environments_secrets_manager_entries(env: str) -> None:
    facts = cluster_params(env)["metadata"]["annotations"]
    secrets = external_secrets(env)
    keys = {
        name: s["spec"]["dataFrom"][0]["extract"]["key"]
        for name, s in secrets.items()
        if s["spec"].get("dataFrom")
    }
    assert {keys[n] for n in ("argocd-repository", "argocd-oidc", "argo-workflows-sso")} == {
        f"{facts['name_prefix']}/{e}" for e in ENTRIES[:3]
    }
    repository = secrets["argocd-repository"]["spec"]["target"]["template"]
    assert repository["metadata"]["labels"] == {"argocd.argoproj.io/secret-type": "repository"}
    assert repository["data"]["url"] == facts["gitops_repo_url"]
    assert set(repository["data"]) >= {"githubAppID", "githubAppInstallationID"}
    oidc = secrets["argocd-oidc"]["spec"]["target"]["template"]["metadata"]["labels"]
    assert oidc["app.kubernetes.io/part-of"] == "argocd"


def test_every_entry_is_named_in_the_readme() -> None:
    readme = (ROOT / "platform/argocd/README.md").read_text(encoding="utf-8")
    missing = [e for e in ENTRIES if f"<name_prefix>/{e}" not in readme]
    assert not missing, f"platform/argocd/README.md does not name {missing}"
