"""The release safety fields of churn-api, pinned per environment.

Each check is a function returning the problems it finds, run on every rendered overlay, and
run again on a copy with the field removed to show it catches the breakage.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

# --import-mode=importlib leaves this folder off sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from argocd_tree import cluster_params

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "staging", "prod")
TEMPLATES = {"churn-api-success-rate", "churn-api-latency-p99", "churn-api-prediction-shift"}
LOAD_TEMPLATE = "churn-api-smoke-load"
# The longest request: a full batch scored and serialised (docs/contracts.md, max batch).
LONGEST_REQUEST_SECONDS = 30

Doc = dict[str, Any]


def one(docs: list[Doc], kind: str, name: str = "churn-api") -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def analysis_refs(strategy: Doc) -> list[Doc]:
    """Every analysis block of a Rollout strategy (steps, background, pre/post promotion)."""
    refs = []
    for kind in ("canary", "blueGreen"):
        block = strategy.get(kind) or {}
        refs += [s["analysis"] for s in block.get("steps", []) if "analysis" in s]
        refs += [
            block[k]
            for k in ("analysis", "prePromotionAnalysis", "postPromotionAnalysis")
            if k in block
        ]
    return refs


# ----------------------------------------------------------------------------- checks
def rollout_problems(rollout: Doc) -> list[str]:
    spec = rollout["spec"]
    problems = []
    if spec.get("progressDeadlineAbort") is not True:
        problems.append("spec.progressDeadlineAbort must be true")
    if not spec.get("progressDeadlineSeconds"):
        problems.append("spec.progressDeadlineSeconds must be set")
    if (spec.get("rollbackWindow") or {}).get("revisions", 0) < 1:
        problems.append("spec.rollbackWindow.revisions must be at least 1")
    if spec.get("workloadRef", {}).get("kind") != "Deployment" or "template" in spec:
        problems.append("spec.workloadRef must point at the Deployment (and no inline template)")
    refs = analysis_refs(spec.get("strategy", {}))
    if not refs:
        problems.append("spec.strategy has no analysis")
    for ref in refs:
        # The load that feeds an analysis is not a judgement of its own.
        names = {t["templateName"] for t in ref.get("templates", [])} - {LOAD_TEMPLATE}
        # After a blue-green promotion no Service reaches the old pods: no shift to measure.
        if not TEMPLATES - {"churn-api-prediction-shift"} <= names <= TEMPLATES:
            problems.append(f"analysis runs {sorted(names)}, not {sorted(TEMPLATES)}")
        args = {
            a["name"]: a.get("valueFrom", {}).get("podTemplateHashValue")
            for a in ref.get("args", [])
            if "valueFrom" in a
        }
        expected = {"canary-hash": "Latest", "stable-hash": "Stable"}
        if "churn-api-prediction-shift" not in names:
            del expected["stable-hash"]
        if args != expected:
            problems.append(
                f"analysis args {args} must pass canary-hash=Latest, stable-hash=Stable"
            )
    return problems


def analysis_problems(template: Doc) -> list[str]:
    problems = []
    name = template["metadata"]["name"]
    for metric in template["spec"]["metrics"]:
        if "job" in metric.get("provider", {}):
            continue  # a Job's verdict is its exit code, with no conditions to guard
        where = f"{name}.{metric['name']}"
        for key in ("successCondition", "failureCondition"):
            condition = metric.get(key, "")
            if not condition:
                problems.append(f"{where}.{key} missing")
            elif "len(result)" not in condition or "isNaN" not in condition:
                problems.append(f"{where}.{key} must guard empty results and NaN: {condition}")
        if metric.get("failureLimit") is None:
            problems.append(f"{where}.failureLimit missing")
        prometheus = metric.get("provider", {}).get("prometheus", {})
        if not prometheus.get("timeout"):
            problems.append(f"{where}.provider.prometheus.timeout missing")
        if not prometheus.get("address"):
            problems.append(f"{where}.provider.prometheus.address missing")
    return problems


def _prestop_seconds(container: Doc) -> int:
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"].get("seconds", 0))
    command = " ".join(pre_stop.get("exec", {}).get("command", []))
    match = re.search(r"sleep (\d+)", command)
    return int(match.group(1)) if match else 0


def pod_problems(deployment: Doc) -> list[str]:
    pod = deployment["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "churn-api")
    problems = []
    startup = container.get("startupProbe", {})
    if startup.get("httpGet", {}).get("path") != "/readyz":
        problems.append("startupProbe must GET /readyz")
    # The model fetch, digest check and warm-up get at least two minutes.
    elif startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3) < 120:
        problems.append("startupProbe must allow at least 120 s for the model fetch")
    if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        problems.append("readinessProbe must GET /readyz")
    if container.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
        problems.append("livenessProbe must GET /healthz")
    pre_stop = _prestop_seconds(container)
    if pre_stop < 5:
        problems.append("lifecycle.preStop must sleep at least 5 s")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= pre_stop + LONGEST_REQUEST_SECONDS:
        problems.append(
            f"terminationGracePeriodSeconds {grace} must exceed preStop + longest request"
        )
    pod_sc, sc = pod.get("securityContext", {}), container.get("securityContext", {})
    if not (pod_sc.get("runAsNonRoot") or sc.get("runAsNonRoot")):
        problems.append("securityContext.runAsNonRoot must be true")
    if "RuntimeDefault" not in {
        pod_sc.get("seccompProfile", {}).get("type"),
        sc.get("seccompProfile", {}).get("type"),
    }:
        problems.append("securityContext.seccompProfile.type must be RuntimeDefault")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("securityContext.allowPrivilegeEscalation must be false")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        problems.append("securityContext.capabilities.drop must be [ALL]")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("securityContext.readOnlyRootFilesystem must be true")
    tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    if not tmp or "emptyDir" not in volumes.get(tmp[0]["name"], {}):
        problems.append("/tmp must be an emptyDir volume")
    resources = container.get("resources", {})
    if not resources.get("requests") or not resources.get("limits", {}).get("memory"):
        problems.append("resources must set requests and a memory limit")
    return problems


# ----------------------------------------------------------------------------- on the overlays
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rollout_aborts_on_deadline_and_analyses_every_release(
    overlays: dict[str, list[Doc]], env: str
) -> None:
    assert rollout_problems(one(overlays[env], "Rollout")) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_analysis_metric_has_both_conditions_and_guards(
    overlays: dict[str, list[Doc]], env: str
) -> None:
    templates = [d for d in overlays[env] if d["kind"] == "AnalysisTemplate"]
    assert {t["metadata"]["name"] for t in templates} >= TEMPLATES
    assert [p for t in templates for p in analysis_problems(t)] == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pod_template_has_probes_prestop_and_restricted_security(
    overlays: dict[str, list[Doc]], env: str
) -> None:
    assert pod_problems(one(overlays[env], "Deployment")) == []


def test_dev_is_a_fast_canary(overlays: dict[str, list[Doc]]) -> None:
    canary = one(overlays["dev"], "Rollout")["spec"]["strategy"]["canary"]
    assert [s for s in canary["steps"] if "pause" in s] == []
    assert any("analysis" in s for s in canary["steps"])


def test_staging_is_blue_green_with_pre_and_post_promotion_analysis(
    overlays: dict[str, list[Doc]],
) -> None:
    strategy = one(overlays["staging"], "Rollout")["spec"]["strategy"]
    assert set(strategy) == {"blueGreen"}
    blue_green = strategy["blueGreen"]
    assert {"prePromotionAnalysis", "postPromotionAnalysis"} <= set(blue_green)
    services = {d["metadata"]["name"] for d in overlays["staging"] if d["kind"] == "Service"}
    assert {blue_green["activeService"], blue_green["previewService"]} <= services


def test_prod_canary_steps_10_25_50_100_with_pauses_background_analysis_and_alb(
    overlays: dict[str, list[Doc]],
) -> None:
    canary = one(overlays["prod"], "Rollout")["spec"]["strategy"]["canary"]
    weights = [s["setWeight"] for s in canary["steps"] if "setWeight" in s]
    assert weights == [10, 25, 50, 100]
    kinds = [next(iter(s)) for s in canary["steps"]]
    assert kinds == ["setWeight", "pause"] * 3 + ["setWeight"]
    assert canary["analysis"]["startingStep"] == 1
    ingress = one(overlays["prod"], "Ingress")
    assert canary["trafficRouting"]["alb"]["ingress"] == ingress["metadata"]["name"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": canary["stableService"], "port": {"name": "use-annotation"}}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_overlay_pins_its_own_model_and_an_image_digest(
    overlays: dict[str, list[Doc]], env: str
) -> None:
    container = one(overlays[env], "Deployment")["spec"]["template"]["spec"]["containers"][0]
    pin = {e["name"]: e["value"] for e in container["env"]}
    assert pin["MODEL_URI"].startswith(f"s3://churn-{env}-models/churn-model/sha256/")
    assert re.fullmatch(r"[0-9a-f]{64}", pin["MODEL_SHA256"])
    assert pin["MODEL_URI"].endswith(f"{pin['MODEL_SHA256']}.onnx")
    # The registry and the role are the cluster's (its Secret), the digest the overlay's.
    facts = cluster_params(env)["metadata"]["annotations"]
    registry = f"{facts['aws_account_id']}.dkr.ecr.{facts['aws_region']}.amazonaws.com"
    pinned = rf"{re.escape(registry)}/churn-api@sha256:[0-9a-f]{{64}}"
    assert re.fullmatch(pinned, container["image"]), container["image"]
    account = one(overlays[env], "ServiceAccount")["metadata"]["annotations"]
    assert account["eks.amazonaws.com/role-arn"] == facts["churn_api_iam_role_arn"]


def test_servicemonitor_keeps_the_pod_template_hash(overlays: dict[str, list[Doc]]) -> None:
    monitor = one(overlays["dev"], "ServiceMonitor")
    relabel = monitor["spec"]["endpoints"][0]["relabelings"]
    assert {
        "sourceLabels": ["__meta_kubernetes_pod_label_rollouts_pod_template_hash"],
        "targetLabel": "rollouts_pod_template_hash",
        "action": "replace",
    } in relabel
    # One scrape per pod: the selected Service is not one Rollouts rewrites.
    selected = [
        d
        for d in overlays["dev"]
        if d["kind"] == "Service"
        and monitor["spec"]["selector"]["matchLabels"].items() <= d["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in selected] == ["churn-api-metrics"]


# ----------------------------------------------------------------------------- the checks catch
def _drop(path: str) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[int(last) if last.isdigit() else last]

    return mutate


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value

    return mutate


def _chain(*mutations: Callable[[Doc], None]) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        for mutation in mutations:
            mutation(doc)

    return mutate


POD = "spec.template.spec"
CONTAINER = f"{POD}.containers.0"
BREAKAGES = [
    ("Rollout", rollout_problems, _drop("spec.progressDeadlineAbort"), "progressDeadlineAbort"),
    ("Rollout", rollout_problems, _drop("spec.rollbackWindow"), "rollbackWindow"),
    ("Rollout", rollout_problems, _drop("spec.strategy.canary.steps.1"), "no analysis"),
    (
        "AnalysisTemplate",
        analysis_problems,
        _drop("spec.metrics.0.failureCondition"),
        "failureCondition missing",
    ),
    (
        "AnalysisTemplate",
        analysis_problems,
        _set("spec.metrics.0.successCondition", "result[0] >= 0.99"),
        "guard",
    ),
    ("AnalysisTemplate", analysis_problems, _drop("spec.metrics.0.failureLimit"), "failureLimit"),
    (
        "AnalysisTemplate",
        analysis_problems,
        _drop("spec.metrics.0.provider.prometheus.timeout"),
        "timeout",
    ),
    ("Deployment", pod_problems, _drop(f"{CONTAINER}.startupProbe"), "startupProbe"),
    ("Deployment", pod_problems, _drop(f"{CONTAINER}.livenessProbe"), "livenessProbe"),
    ("Deployment", pod_problems, _drop(f"{CONTAINER}.lifecycle"), "preStop"),
    (
        "Deployment",
        pod_problems,
        _set(f"{POD}.terminationGracePeriodSeconds", 30),
        "terminationGracePeriodSeconds",
    ),
    (
        "Deployment",
        pod_problems,
        _set(f"{CONTAINER}.securityContext.readOnlyRootFilesystem", False),
        "readOnlyRootFilesystem",
    ),
    (
        "Deployment",
        pod_problems,
        _drop(f"{CONTAINER}.securityContext.allowPrivilegeEscalation"),
        "allowPrivilegeEscalation",
    ),
    (
        "Deployment",
        pod_problems,
        _chain(
            _drop(f"{POD}.securityContext.seccompProfile"),
            _drop(f"{CONTAINER}.securityContext.seccompProfile"),
        ),
        "seccompProfile",
    ),
    ("Deployment", pod_problems, _drop(f"{POD}.volumes"), "/tmp"),
]


@pytest.mark.parametrize(
    ("kind", "check", "mutate", "expected"),
    BREAKAGES,
    ids=[f"{b[0]}-{b[3]}" for b in BREAKAGES],
)
def test_breaking_a_safety_field_is_caught(
    overlays: dict[str, list[Doc]],
    kind: str,
    check: Callable[[Doc], list[str]],
    mutate: Callable[[Doc], None],
    expected: str,
) -> None:
    doc = copy.deepcopy(next(d for d in overlays["dev"] if d["kind"] == kind))
    assert check(doc) == []
    mutate(doc)
    assert any(expected in problem for problem in check(doc)), check(doc)


# ----------------------------------------------------------------------------- Argo CD
def _load(path: str) -> Doc:
    return yaml.safe_load((ROOT / path).read_text())


def test_churn_api_ignores_the_fields_rollouts_and_the_hpa_own() -> None:
    spec = _load("platform/apps/churn-api/applicationset.yaml")["spec"]["template"]["spec"]
    ignored = {(d.get("group", ""), d["kind"]): d for d in spec["ignoreDifferences"]}
    assert ignored[("argoproj.io", "Rollout")]["jsonPointers"] == ["/spec/replicas"]
    assert ignored[("apps", "Deployment")]["jsonPointers"] == ["/spec/replicas"]
    assert "RespectIgnoreDifferences=true" in spec["syncPolicy"]["syncOptions"]


@pytest.mark.parametrize("project", ["platform", "churn"])
def test_prod_syncs_inside_a_window_only(project: str) -> None:
    windows = _load(f"platform/argocd/projects/{project}.yaml")["spec"]["syncWindows"]
    assert [w["applications"] for w in windows if w["kind"] == "allow"] == [["*-prod"]]


def test_churn_project_is_namespaced_and_restricted() -> None:
    spec = _load("platform/argocd/projects/churn.yaml")["spec"]
    assert spec["clusterResourceWhitelist"] == []
    assert {d["namespace"] for d in spec["destinations"]} == {"churn", "churn-training"}
    assert "*" not in spec["sourceRepos"]


def test_every_addon_layers_values_default_environment_cluster() -> None:
    for appset in sorted(ROOT.glob("platform/apps/*/applicationset.yaml")):
        spec = yaml.safe_load(appset.read_text())["spec"]["template"]["spec"]
        charts = [s for s in spec.get("sources", []) if "chart" in s]
        app = appset.parent.name
        for chart in charts:
            assert chart["helm"]["ignoreMissingValueFiles"] is True, app
            assert chart["helm"]["valueFiles"] == [
                f"$values/platform/apps/{app}/values.yaml",
                f"$values/platform/apps/{app}/values-{{{{.metadata.labels.environment}}}}.yaml",
                f"$values/clusters/{{{{.metadata.labels.environment}}}}/values/{app}.yaml",
            ], app


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_cluster_lists_argocd_and_every_app_folder(env: str) -> None:
    listed = _load(f"clusters/{env}/kustomization.yaml")["resources"]
    apps = {p.parent.name for p in ROOT.glob("platform/apps/*/kustomization.yaml")}
    assert "../../platform/argocd" in listed
    assert {f"../../platform/apps/{a}" for a in apps} <= set(listed)
    assert _load(f"clusters/{env}/root.yaml")["spec"]["source"]["path"] == f"clusters/{env}"


def test_every_checkov_skip_is_justified_on_its_line() -> None:
    lines = (Path(__file__).with_name("checkov.yaml")).read_text().splitlines()
    config = yaml.safe_load("\n".join(lines))
    for check in config.get("skip-check") or []:
        line = next(x for x in lines if re.match(rf"\s*-\s*{re.escape(check)}\b", x))
        assert re.search(r"#\s*\S.{10,}", line), f"{check} is skipped without a reason"
