"""A churn-api release reaches a verdict on its own, in every environment.

Checked on the rendered overlays:

- an analysis that no client would feed (dev's canary, staging's preview and, after promotion,
  its active Service) runs the smoke load against the Service that reaches the new pods, for
  longer than its slowest Prometheus metric measures, in the overlay's own image;
- staging's post-promotion analysis is not cancelled by a scale-down delay;
- prod's background analysis lasts the whole canary (no metric stops after a count);
- the hashed settings ConfigMap is never pruned while a ReplicaSet may still read it;
- the load may reach churn-api through the NetworkPolicies;
- an abort notifies GitHub with the event, token and payload the revert workflow expects.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import render

Doc = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
LOAD = "churn-api-smoke-load"
ENVIRONMENTS = ("dev", "staging", "prod")
DURATION = re.compile(r"^(\d+)([smh]?)$")


def _seconds(value: str | int | None) -> int:
    if value is None:
        return 0
    match = DURATION.match(str(value))
    assert match, f"not a duration: {value}"
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def _one(docs: list[Doc], kind: str, name: str = "churn-api") -> Doc:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def _templates(docs: list[Doc]) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "AnalysisTemplate"}


def _args(ref: Doc, templates: dict[str, Doc]) -> dict[str, str]:
    """Argument values of an analysis block: the template defaults, then the Rollout's."""
    values = {
        arg["name"]: arg["value"]
        for name in (t["templateName"] for t in ref["templates"])
        for arg in templates[name]["spec"].get("args", [])
        if "value" in arg
    }
    values.update({a["name"]: a["value"] for a in ref.get("args", []) if "value" in a})
    return values


def _measured_seconds(ref: Doc, templates: dict[str, Doc]) -> int:
    """How long the analysis's Prometheus metrics measure: initialDelay + count x interval."""
    longest = 0
    for name in (t["templateName"] for t in ref["templates"]):
        for metric in templates[name]["spec"]["metrics"]:
            if "prometheus" in metric["provider"]:
                count = int(metric["count"])
                measured = _seconds(metric.get("initialDelay")) + count * _seconds(
                    metric.get("interval")
                )
                longest = max(longest, measured)
    return longest


def _service_url(name: str) -> str:
    return f"http://{name}:8000"


def load_problems(ref: Doc, templates: dict[str, Doc], new: str, stable: str | None) -> list[str]:
    """What keeps the analysis ``ref`` from having traffic on ``new`` (and ``stable``)."""
    names = [t["templateName"] for t in ref["templates"]]
    if LOAD not in names:
        return [f"analysis {names} has no {LOAD}: nothing calls the pods it judges"]
    args = _args(ref, templates)
    problems = []
    if args.get("new-url") != _service_url(new):
        problems.append(f"the load goes to {args.get('new-url')}, not {_service_url(new)}")
    if args.get("stable-url", "") != (_service_url(stable) if stable else ""):
        problems.append(f"the load's stable URL is {args.get('stable-url')!r}, not {stable!r}")
    load_seconds = int(args["duration-seconds"])
    if load_seconds <= _measured_seconds(ref, templates):
        problems.append(
            f"the load lasts {load_seconds}s, the metrics measure "
            f"{_measured_seconds(ref, templates)}s"
        )
    return problems


def test_the_dev_canary_analysis_drives_the_canary_and_the_stable(
    overlays: dict[str, list[Doc]],
) -> None:
    docs = overlays["dev"]
    canary = _one(docs, "Rollout")["spec"]["strategy"]["canary"]
    assert "trafficRouting" not in canary, "without a router, clients reach only stable pods"
    (ref,) = [s["analysis"] for s in canary["steps"] if "analysis" in s]
    problems = load_problems(
        ref, _templates(docs), canary["canaryService"], canary["stableService"]
    )
    assert problems == []


def test_the_staging_preview_and_post_promotion_analyses_are_driven(
    overlays: dict[str, list[Doc]],
) -> None:
    docs = overlays["staging"]
    blue_green = _one(docs, "Rollout")["spec"]["strategy"]["blueGreen"]
    templates = _templates(docs)
    active, preview = blue_green["activeService"], blue_green["previewService"]
    pre = load_problems(blue_green["prePromotionAnalysis"], templates, preview, active)
    post = load_problems(blue_green["postPromotionAnalysis"], templates, active, None)
    assert pre + post == []


def test_the_staging_post_promotion_analysis_is_not_cancelled_by_a_scale_down_delay(
    overlays: dict[str, list[Doc]],
) -> None:
    blue_green = _one(overlays["staging"], "Rollout")["spec"]["strategy"]["blueGreen"]
    # Argo Rollouts cancels post-promotion AnalysisRuns at scaleDownDelaySeconds when it is
    # set; unset, it scales the old stack down only after the analysis completes.
    assert "scaleDownDelaySeconds" not in blue_green


def test_the_prod_background_analysis_measures_until_the_canary_completes(
    overlays: dict[str, list[Doc]],
) -> None:
    docs = overlays["prod"]
    canary = _one(docs, "Rollout")["spec"]["strategy"]["canary"]
    templates = _templates(docs)
    counted = [
        f"{ref['templateName']}.{metric['name']}"
        for ref in canary["analysis"]["templates"]
        for metric in templates[ref["templateName"]]["spec"]["metrics"]
        if "count" in metric
    ]
    assert counted == [], "a counted metric stops measuring before the canary ends"
    assert LOAD not in {t["templateName"] for t in canary["analysis"]["templates"]}, (
        "prod's canary gets real clients through the ALB"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_load_job_runs_the_overlays_image_with_the_mounted_script(
    overlays: dict[str, list[Doc]], env: str
) -> None:
    docs = overlays[env]
    deployment = _one(docs, "Deployment")
    (image,) = {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    job = _templates(docs)[LOAD]["spec"]["metrics"][0]["provider"]["job"]["spec"]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == image
    assert "@sha256:" in image
    (volume,) = pod["volumes"]
    script = _one(docs, "ConfigMap", volume["configMap"]["name"])
    assert container["command"][-1].endswith("/" + next(iter(script["data"])))
    assert job["backoffLimit"] == 0, "a failed load is a verdict, not a retry"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_hashed_settings_configmap_outlives_the_sync_that_replaces_it(
    overlays: dict[str, list[Doc]], env: str
) -> None:
    (settings,) = [
        d
        for d in overlays[env]
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("churn-api-settings-")
    ]
    annotations = settings["metadata"].get("annotations", {})
    assert "Prune=false" in annotations.get("argocd.argoproj.io/sync-options", "")
    assert "IgnoreExtraneous" in annotations.get("argocd.argoproj.io/compare-options", "")


def _selects(selector: Doc, labels: dict[str, str]) -> bool:
    return selector.get("matchLabels", {}).items() <= labels.items()


def test_the_network_policies_let_the_load_reach_churn_api(
    overlays: dict[str, list[Doc]],
) -> None:
    docs = overlays["dev"]
    load_labels = _templates(docs)[LOAD]["spec"]["metrics"][0]["provider"]["job"]["spec"][
        "template"
    ]["metadata"]["labels"]
    api_labels = _one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    policies = [d["spec"] for d in docs if d["kind"] == "NetworkPolicy"]
    ingress = [
        peer
        for p in policies
        if _selects(p["podSelector"], api_labels)
        for rule in p.get("ingress", [])
        for peer in rule.get("from", [])
    ]
    egress = [
        peer
        for p in policies
        if _selects(p["podSelector"], load_labels) and p["podSelector"]
        for rule in p.get("egress", [])
        for peer in rule.get("to", [])
    ]
    assert any(
        "namespaceSelector" not in peer and _selects(peer.get("podSelector", {}), load_labels)
        for peer in ingress
        if "podSelector" in peer
    )
    assert any(
        "namespaceSelector" not in peer and _selects(peer.get("podSelector", {}), api_labels)
        for peer in egress
        if "podSelector" in peer
    )


# ----------------------------------------------------------------------------- abort -> revert
REVERT_WORKFLOW = ROOT / ".github" / "workflows" / "revert-aborted-release.yaml"
GO_ACTION = re.compile(r"\{\{.*?\}\}")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_an_abort_dispatches_the_event_the_revert_workflow_handles(
    overlays: dict[str, list[Doc]], env: str
) -> None:
    docs = overlays[env]
    rollout = _one(docs, "Rollout")
    assert rollout["metadata"]["labels"]["environment"] == env
    subscriptions = {
        key.removeprefix("notifications.argoproj.io/subscribe.on-rollout-aborted.")
        for key in rollout["metadata"].get("annotations", {})
        if key.startswith("notifications.argoproj.io/subscribe.on-rollout-aborted.")
    }
    assert len(subscriptions) == 1, "the Rollout must subscribe to on-rollout-aborted"
    (service,) = subscriptions
    config = _one(docs, "ConfigMap", "argo-rollouts-notification-configmap")["data"]
    webhook = yaml.safe_load(config[f"service.webhook.{service}"])
    assert webhook["url"] == "https://api.github.com"
    token = next(h["value"] for h in webhook["headers"] if h["name"] == "Authorization")
    secret_key = token.removeprefix("Bearer $")
    external = _one(docs, "ExternalSecret", "argo-rollouts-notification-secret")
    assert external["spec"]["target"]["name"] == "argo-rollouts-notification-secret"
    assert [d["secretKey"] for d in external["spec"]["data"]] == [secret_key]
    assert external["spec"]["data"][0]["remoteRef"]["key"].startswith(f"churn-{env}/")
    (trigger,) = yaml.safe_load(config["trigger.on-rollout-aborted"])
    (template,) = trigger["send"]
    request = yaml.safe_load(config[f"template.{template}"])["webhook"][service]
    repository = _application_repository()
    assert (request["method"], request["path"]) == ("POST", f"/repos/{repository}/dispatches")
    body = json.loads(GO_ACTION.sub("x", request["body"]))
    workflow = yaml.safe_load(REVERT_WORKFLOW.read_text())
    assert [body["event_type"]] == workflow[True]["repository_dispatch"]["types"]
    read = set(re.findall(r"client_payload\.(\w+)", REVERT_WORKFLOW.read_text()))
    assert read <= set(body["client_payload"]), "the workflow reads what the body carries"
    assert '{{index .rollout.metadata.labels "environment"}}' in request["body"]


def _application_repository() -> str:
    """owner/name of the repository Argo CD syncs churn-api from."""
    appset = yaml.safe_load((ROOT / "platform/apps/churn-api/applicationset.yaml").read_text())
    spec = appset["spec"]["template"]["spec"]
    sources = spec.get("sources") or [spec["source"]]
    url = next(s["repoURL"] for s in sources if not s.get("chart"))
    if "{{" in url:
        # The ApplicationSet reads the repository from the cluster Secret (gitops_repo_url).
        fixture = ROOT / "platform/tests/fixtures/cluster-secrets/dev.yaml"
        url = yaml.safe_load(fixture.read_text())["metadata"]["annotations"]["gitops_repo_url"]
    return str(url).removeprefix("https://github.com/").removesuffix(".git")


def test_the_rollouts_controller_reads_the_notifications_beside_the_rollout() -> None:
    values = yaml.safe_load((ROOT / "platform/apps/argo-rollouts/values.yaml").read_text())
    assert "--self-service-notification-enabled" in values["controller"].get("extraArgs", [])


def test_the_churn_namespace_gets_the_alb_pod_readiness_gate(
    overlays: dict[str, list[Doc]],
) -> None:
    ingress = _one(overlays["prod"], "Ingress")
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] == "ip"
    namespaces = [
        d
        for d in yaml.safe_load_all((ROOT / "platform/argocd/namespaces.yaml").read_text())
        if d and d["kind"] == "Namespace" and d["metadata"]["name"] == "churn"
    ]
    (namespace,) = namespaces
    labels = namespace["metadata"]["labels"]
    assert labels.get("elbv2.k8s.aws/pod-readiness-gate-inject") == "enabled"


HEALTH_WORKFLOW = ROOT / ".github" / "workflows" / "release-health.yaml"


@pytest.mark.parametrize(
    ("trigger", "workflows"),
    [
        ("on-rollout-aborted", (REVERT_WORKFLOW, HEALTH_WORKFLOW)),
        ("on-rollout-completed", (HEALTH_WORKFLOW,)),
    ],
)
def test_each_rollout_event_reaches_the_workflows_that_record_it(
    overlays: dict[str, list[Doc]], trigger: str, workflows: tuple[Path, ...]
) -> None:
    docs = overlays["dev"]
    annotations = _one(docs, "Rollout")["metadata"]["annotations"]
    prefix = f"notifications.argoproj.io/subscribe.{trigger}."
    (service,) = [key.removeprefix(prefix) for key in annotations if key.startswith(prefix)]
    config = _one(docs, "ConfigMap", "argo-rollouts-notification-configmap")["data"]
    (send,) = yaml.safe_load(config[f"trigger.{trigger}"])
    events = {
        json.loads(
            GO_ACTION.sub("x", yaml.safe_load(config[f"template.{t}"])["webhook"][service]["body"])
        )["event_type"]
        for t in send["send"]
    }
    for workflow in workflows:
        types = set(yaml.safe_load(workflow.read_text())[True]["repository_dispatch"]["types"])
        assert events & types, f"{workflow.name} handles none of {events}"


# ----------------------------------------------------------------------------- admission
def _kyverno_cel() -> Any:
    """policies/tests/kyverno_cel.py, the offline evaluator of the policies' CEL."""
    sys.path.insert(0, str(ROOT / "policies" / "tests"))
    import kyverno_cel  # noqa: PLC0415 (found through the path above)

    return kyverno_cel


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_load_job_passes_the_policies_that_deny_in_churn(
    overlays: dict[str, list[Doc]], kubectl: str, env: str
) -> None:
    cel = _kyverno_cel()
    docs = overlays[env]
    provider = _templates(docs)[LOAD]["spec"]["metrics"][0]["provider"]["job"]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "churn-api-smoke-load", "namespace": "churn", **provider["metadata"]},
        "spec": provider["spec"],
    }
    policy_docs = render(kubectl, ROOT / f"platform/apps/kyverno-policies/overlays/{env}")
    denying = [
        cel.compile_policy(d)
        for d in policy_docs
        if d["kind"] == "ValidatingPolicy" and "Deny" in d["spec"]["validationActions"]
    ]
    namespaces = [
        d
        for d in yaml.safe_load_all((ROOT / "platform/argocd/namespaces.yaml").read_text())
        if d and d["kind"] == "Namespace"
    ]
    context = [*namespaces, *docs]
    outcomes = {p.name: p.evaluate(job, context_resources=context, exceptions=[]) for p in denying}
    assert [n for n, o in outcomes.items() if o is not None], "no Deny policy applied"
    refused = {n: o for n, o in outcomes.items() if o is not None and o.result != "pass"}
    assert refused == {}
