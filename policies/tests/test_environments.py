"""Audit in dev, Deny in staging and prod: what each cluster's Application renders.

The ApplicationSet platform/apps/kyverno-policies syncs overlays/<env> to the cluster whose
Secret carries the `environment` label. Each overlay is rendered here with the real
`kubectl kustomize`, and the rendered policies are evaluated: the models bucket is the one of
that environment, so a dev pin fails in prod.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kyverno_cel import compile_policy, load_documents, load_exceptions
from kyverno_suite import discover_policies, render

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "platform" / "tests"))
from argocd_tree import cluster_params, generated_apps, render_source

POLICIES = Path(__file__).resolve().parents[1]
REPO = POLICIES.parent
APP = REPO / "platform" / "apps" / "kyverno-policies"
ACTIONS = {"dev": ["Audit"], "staging": ["Deny"], "prod": ["Deny"]}
NAMES = sorted(p.stem for p in discover_policies(POLICIES))
# The label of the add-ons' Audit copies (platform/apps/kyverno-policies/addons-audit).
SCOPE_LABEL = "churn-platform/policy-scope"


def is_addons_copy(policy: dict[str, Any]) -> bool:
    return (policy["metadata"].get("labels") or {}).get(SCOPE_LABEL) == "addons"


@pytest.mark.parametrize("env", sorted(ACTIONS))
def test_overlay_sets_the_environment_action_on_every_policy(env: str) -> None:
    documents = render(APP / "overlays" / env)
    policies = [d for d in documents if d["kind"] == "ValidatingPolicy" and not is_addons_copy(d)]
    assert sorted(p["metadata"]["name"] for p in policies) == NAMES
    wrong = [
        p["metadata"]["name"] for p in policies if p["spec"]["validationActions"] != ACTIONS[env]
    ]
    assert not wrong, f"{env}: these policies are not {ACTIONS[env]}: {wrong}"
    exceptions = load_exceptions(documents)
    assert {e.name for e in exceptions} == {
        p.stem for p in (POLICIES / "exceptions").glob("*.yaml")
    }


def synced_policies(env: str) -> list[dict[str, Any]]:
    """The policies as the generated Application syncs them: the overlay of `env` with the
    ApplicationSet's patches, filled from the environment's cluster Secret."""
    (app,) = [a for a in generated_apps(env) if a.name == f"kyverno-policies-{env}"]
    (source,) = app.sources
    return render_source(source)


@pytest.mark.parametrize("env", sorted(ACTIONS))
def test_overlay_approves_only_its_own_models_bucket(env: str) -> None:
    (document,) = [d for d in synced_policies(env) if d["metadata"]["name"] == "require-model-pin"]
    policy = compile_policy(document)
    fixture = next(
        d
        for d in load_documents(POLICIES / "require-model-pin" / ".kyverno-test" / "resource.yaml")
        if d["metadata"]["name"] == "goodpod01"
    )
    for bucket_env in ACTIONS:
        pod = copy.deepcopy(fixture)
        env_vars = pod["spec"]["containers"][0]["env"]
        env_vars[0]["value"] = env_vars[0]["value"].replace(
            "churn-dev-models", f"churn-{bucket_env}-models"
        )
        outcome = policy.evaluate(pod)
        assert outcome is not None
        expected = "pass" if bucket_env == env else "fail"
        assert outcome.result == expected, f"{env} policy on a {bucket_env} pin: {outcome}"


@pytest.mark.parametrize("env", sorted(ACTIONS))
def test_the_registry_is_the_clusters_own(env: str) -> None:
    (document,) = [
        d for d in synced_policies(env) if d["metadata"]["name"] == "restrict-image-registries"
    ]
    annotations = cluster_params(env)["metadata"]["annotations"]
    registry = f"{annotations['aws_account_id']}.dkr.ecr.{annotations['aws_region']}.amazonaws.com/"
    assert document["spec"]["variables"][0]["expression"] == f"'{registry}'"


def test_applicationset_syncs_the_overlay_named_by_the_cluster_label() -> None:
    (appset,) = load_documents(APP / "applicationset.yaml")
    spec = appset["spec"]
    assert spec["goTemplate"] is True
    (generator,) = spec["generators"]
    (expression,) = generator["clusters"]["selector"]["matchExpressions"]
    assert expression["key"] == "environment"
    assert sorted(expression["values"]) == sorted(ACTIONS)
    template = spec["template"]["spec"]
    assert template["project"] == "platform"
    path = template["source"]["path"]
    assert "models_bucket" in json.dumps(template["source"]["kustomize"]["patches"])
    assert path == "platform/apps/kyverno-policies/overlays/{{.metadata.labels.environment}}"
    for env in ACTIONS:
        assert (REPO / path.replace("{{.metadata.labels.environment}}", env)).is_dir()
    kustomization = yaml.safe_load((APP / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["resources"] == ["applicationset.yaml"]


def test_base_renders_only_policies_and_exceptions() -> None:
    kinds = {d["kind"] for d in render(POLICIES)}
    assert kinds == {"ValidatingPolicy", "PolicyException"}
