"""The chart job's plan and the promotion gate on PolicyReports (policies/ci)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "policies" / "ci"))

from addon_charts import helm_command, plan, policies_for  # noqa: E402
from policy_reports_clean import application_namespaces, main, problems  # noqa: E402

ADDON_NAMESPACES = ("argocd", "argo", "argo-rollouts", "kyverno", "monitoring", "kube-system")


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_no_deny_policy_reaches_an_add_on_chart(env: str) -> None:
    for job in plan(env):
        deny, audit = policies_for(env, job.namespace)
        assert not deny, f"{env}/{job.app}: {[p['metadata']['name'] for p in deny]} would deny"
        assert audit, f"{env}/{job.app}: nothing audits {job.namespace}"
    deny, _ = policies_for(env, "churn")
    assert len(deny) >= 10


def test_helm_command_renders_the_pinned_chart_with_every_values_layer(tmp_path: Path) -> None:
    (job,) = [j for j in plan("prod") if j.chart == "kube-prometheus-stack"]
    command = helm_command(job, tmp_path / "values-object.yaml")
    assert command[:4] == ["helm", "template", job.release, "kube-prometheus-stack"]
    assert command[command.index("--version") + 1] == job.version
    assert command[command.index("--namespace") + 1] == "monitoring"
    values = [command[i + 1] for i, arg in enumerate(command) if arg == "--values"]
    assert values[0].endswith("platform/apps/kube-prometheus-stack/values.yaml")
    assert values[-1] == str(tmp_path / "values-object.yaml")


def report(namespace: str, *results: tuple[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": "PolicyReport",
        "metadata": {"namespace": namespace, "name": "r"},
        "scope": {"kind": "Deployment", "name": "churn-api"},
        "results": [
            {"policy": policy, "result": result, "message": f"{policy} says {result}"}
            for policy, result in results
        ],
    }


def test_the_gate_reads_the_churn_project_namespaces() -> None:
    assert application_namespaces() == ["churn", "churn-training"]


def test_clean_reports_pass_and_add_on_findings_do_not_gate() -> None:
    reports = {
        "items": [
            report("churn", ("require-probes", "pass"), ("restrict-image-registries", "skip")),
            report("monitoring", ("require-ro-rootfs-addons", "fail")),
        ]
    }
    assert problems(reports, ["churn", "churn-training"]) == []


def test_a_failure_in_our_namespace_blocks_and_is_named() -> None:
    reports = {"items": [report("churn-training", ("require-requests-limits", "fail"))]}
    (line,) = problems(reports, ["churn", "churn-training"])
    assert line.startswith("churn-training: fail require-requests-limits on Deployment/churn-api")
    reports = {"items": [report("churn", ("require-probes", "error"))]}
    assert problems(reports, ["churn"])


def test_no_report_is_no_evidence() -> None:
    assert problems({"items": [report("monitoring", ("x", "pass"))]}, ["churn"]) == [
        "no PolicyReport in churn: is Kyverno reporting?"
    ]


def test_cli_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    clean = json.dumps({"items": [report("churn", ("require-probes", "pass"))]})
    assert main([], stdin=io.StringIO(clean)) == 0
    failing = json.dumps({"items": [report("churn", ("require-probes", "fail"))]})
    assert main([], stdin=io.StringIO(failing)) == 1
    assert "require-probes" in capsys.readouterr().err
    assert main([], stdin=io.StringIO("not json")) == 2
    assert main([], stdin=io.StringIO('{"kind": "List"}')) == 2
    assert "expected a report list" in capsys.readouterr().err


def test_dev_reports_its_policy_reports_for_our_namespaces() -> None:
    # The CronJob in dev judges the namespaces the gate means, with the scripts as they are here.
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "platform/apps/kyverno-policies/overlays/dev")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    (cronjob,) = [d for d in documents if d["kind"] == "CronJob"]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    namespaces = sorted(a.split("=", 1)[1] for a in args if a.startswith("--namespace="))
    assert namespaces == application_namespaces()
    assert "--environment=dev" in args
    (scripts,) = [v for v in pod["volumes"] if "configMap" in v]
    (configmap,) = [
        d
        for d in documents
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == scripts["configMap"]["name"]
    ]
    for name in ("policy_reports_clean.py", "policy_reports_dispatch.py"):
        assert configmap["data"][name] == (REPO / "policies/ci" / name).read_text(encoding="utf-8")
    assert container["command"][-1].endswith("/policy_reports_dispatch.py")
    for env in ("staging", "prod"):
        other = subprocess.run(
            ["kubectl", "kustomize", str(REPO / f"platform/apps/kyverno-policies/overlays/{env}")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert "kind: CronJob" not in other, f"{env} reports nothing: the gate reads dev's"
