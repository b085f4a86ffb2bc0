"""The copy a kind cluster bootstraps from: rendered, it is the real tree with kind's parts only.

The copy is written as e2e-kind.sh writes it, then rendered with kustomize the way Argo CD
renders it: the root lists the release apps, dev's churn-api runs the pushed digest against the
in-cluster S3 and notifies the recorder, dev's policies deny, and a pin is a one-file change.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO_URL = "git://git.e2e-git.svc/churn-platform.git"
DIGEST = "sha256:" + "ab" * 32
S3 = "http://s3.e2e-s3.svc:443"
RECORDER = "http://dispatch.e2e-github.svc:8080"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prepare_repo", HERE / "prepare_repo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["prepare_repo"] = module
    spec.loader.exec_module(module)
    return module


prepare_repo = _load()


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("kind") / "repo"
    prepare_repo.prepare(
        dest, repo_url=REPO_URL, digest=DIGEST, s3_endpoint=S3, dispatch_url=RECORDER
    )
    return Path(dest)


def _render(kubectl: str, path: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_every_git_source_is_the_in_cluster_server(copy: Path) -> None:
    texts = [p.read_text() for p in copy.rglob("*.yaml")]
    assert not any(prepare_repo.ORIGIN in text for text in texts)
    assert sum(REPO_URL in text for text in texts) > 5


def test_the_root_syncs_argocd_and_the_release_apps_only(copy: Path, kubectl: str) -> None:
    docs = _render(kubectl, copy / "clusters/dev")
    (root,) = [d for d in docs if d["kind"] == "Application" and d["metadata"]["name"] == "root"]
    assert root["spec"]["source"]["repoURL"] == REPO_URL
    appsets = {d["metadata"]["name"] for d in docs if d["kind"] == "ApplicationSet"}
    assert appsets == set(prepare_repo.KEPT_APPS)
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "AppProject"} >= {"churn"}


def test_dev_churn_api_runs_the_pushed_digest_against_kinds_s3_and_recorder(
    copy: Path, kubectl: str
) -> None:
    docs = _render(kubectl, copy / prepare_repo.OVERLAY)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    # The overlay pins the digest; kind's Argo CD adds the registry (the ApplicationSet's).
    assert container["image"] == f"churn-api@{DIGEST}"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AWS_ENDPOINT_URL_S3"] == S3
    assert {"MODEL_URI", "MODEL_SHA256", "MODEL_VERSION"} <= set(env)
    (config,) = [d for d in docs if d["metadata"]["name"] == "argo-rollouts-notification-configmap"]
    assert yaml.safe_load(config["data"]["service.webhook.github-dispatch"])["url"] == RECORDER
    assert "template.revert-aborted-release" in config["data"]
    assert not [d for d in docs if d["kind"] == "ExternalSecret"]
    (rollout,) = [d for d in docs if d["kind"] == "Rollout"]
    assert rollout["spec"]["progressDeadlineSeconds"] == 240
    assert rollout["metadata"]["labels"]["environment"] == "dev"


def test_dev_policies_deny_in_the_application_namespaces(copy: Path, kubectl: str) -> None:
    docs = _render(kubectl, copy / "platform/apps/kyverno-policies/overlays/dev")
    actions = {
        tuple(d["spec"]["validationActions"])
        for d in docs
        if d["kind"] == "ValidatingPolicy" and d["metadata"]["name"] == "require-image-digest"
    }
    assert ("Deny",) in actions
    assert not [d for d in docs if d["kind"] in ("ExternalSecret", "CronJob")]


def test_the_rollouts_controller_reads_the_notifications_beside_the_rollout(copy: Path) -> None:
    layer = yaml.safe_load((copy / "clusters/dev/values/argo-rollouts.yaml").read_text())
    assert "--self-service-notification-enabled" in layer["controller"]["extraArgs"]
    assert layer["controller"]["replicas"] == 1


def test_a_model_pin_is_a_change_of_the_pin_file_alone(copy: Path, kubectl: str) -> None:
    before = {p: p.read_text() for p in copy.rglob("*.yaml")}
    prepare_repo.pin(copy, "cd" * 32, "7")
    changed = [p for p, text in before.items() if p.read_text() != text]
    assert changed == [copy / prepare_repo.OVERLAY / "model.yaml"]
    docs = _render(kubectl, copy / prepare_repo.OVERLAY)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODEL_SHA256"] == "cd" * 32
    assert env["MODEL_VERSION"] == "7"


def test_monitoring_syncs_its_rules_without_external_secrets(copy: Path, kubectl: str) -> None:
    kinds = [d["kind"] for d in _render(kubectl, copy / "monitoring")]
    assert "ExternalSecret" not in kinds
    assert kinds.count("PrometheusRule") == len(list((copy / "monitoring/rules").glob("*.yaml")))
