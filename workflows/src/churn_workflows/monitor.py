"""``churn-monitor`` and ``churn-outcomes`` WorkflowTemplates, and the daily monitor CronWorkflow.

churn-monitor: monitor (live quality and drift per model version and day into
the prediction store; decides) -> retrain (when the monitor says so: an Argo
resource template creates a ``churn-train`` Workflow on the exported snapshot,
with the reason and ``drift=report`` in its parameters). The end of the loop
stays the pull request churn-train opens, or does not open.

churn-outcomes: load a file of churn outcomes from S3 into the store.

Both read the store's URL from the Secret ``churn-predictions-db`` (key
``url``), made from the environment's database secret. Rendered by
``churn_workflows.render``.
"""

from __future__ import annotations

import json

from hera.workflows import (
    DAG,
    CronWorkflow,
    Parameter,
    Resource,
    WorkflowTemplate,
)
from hera.workflows import models as m

from churn_workflows import argo
from churn_workflows.pin import ENVIRONMENTS
from churn_workflows.steps.monitor import MonitorConfig

__all__ = ["build", "cron", "outcomes"]

W = argo.WORK
ENV = "{{workflow.parameters.environment}}"
_SUBMITTED = ("environment", "snapshot", "snapshot-sha256", "reason")


def _param(name: str) -> str:
    return "{{workflow.parameters.%s}}" % name  # noqa: UP031 - Argo's braces, not Python's


def _monitor_output(name: str) -> str:
    return "{{tasks.monitor.outputs.parameters.%s}}" % name  # noqa: UP031 - Argo's braces


def _input(name: str) -> str:
    return "{{inputs.parameters.%s}}" % name  # noqa: UP031 - Argo's braces


def _environment() -> Parameter:
    return argo.parameter("environment", "dev", "Environment watched.", list(ENVIRONMENTS))


def build() -> WorkflowTemplate:
    """The ``churn-monitor`` WorkflowTemplate."""
    defaults = MonitorConfig(store_url="", models_uri="", data_uri="")
    with WorkflowTemplate(
        name="churn-monitor",
        entrypoint="monitor-and-retrain",
        annotations={
            "workflows.argoproj.io/description": (
                "Live quality and drift of the served churn models from captured predictions "
                "and their outcomes; past a threshold, submit churn-train on recent labelled "
                "captures."
            ),
        },
        arguments=[
            _environment(),
            argo.parameter("days", str(defaults.days), "Window of predictions, in days."),
            argo.parameter(
                "min-labels", str(defaults.min_labels), "Labels needed before AUC may decide."
            ),
            argo.parameter("min-roc-auc", str(defaults.min_roc_auc), "Live ROC AUC floor."),
            argo.parameter("max-psi", str(defaults.max_psi), "Largest feature/prediction PSI."),
            argo.parameter(
                "retrain", "true", "true: submit churn-train past a threshold.", ["true", "false"]
            ),
        ],
        **argo.workflow_settings(),  # type: ignore[arg-type]
    ) as template:
        monitor = argo.step(
            "monitor",
            "monitor",
            [
                "--models",
                f"s3://churn-{ENV}-models",
                "--data",
                f"s3://churn-{ENV}-data",
                "--days",
                _param("days"),
                "--min-labels",
                _param("min-labels"),
                "--min-roc-auc",
                _param("min-roc-auc"),
                "--max-psi",
                _param("max-psi"),
                "--output",
                f"{W}/monitor",
            ],
            outputs=[
                Parameter(name=n, value_from=m.ValueFrom(path=f"{W}/monitor/{n}"))
                for n in ("retrain", "reason", "snapshot", "snapshot-sha256")
            ],
            memory="2Gi",
            env=argo.store_env(),
        )
        workflow = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {
                "generateName": "churn-train-monitor-",
                "labels": {
                    "app.kubernetes.io/name": "churn-workflows",
                    "churn-monitor/triggered": "true",
                },
                "annotations": {"churn-monitor/snapshot-sha256": _input("snapshot-sha256")},
            },
            "spec": {
                "workflowTemplateRef": {"name": "churn-train"},
                "arguments": {
                    "parameters": [
                        {"name": "environment", "value": _input("environment")},
                        {"name": "data-source", "value": _input("snapshot")},
                        {"name": "reason", "value": _input("reason")},
                        {"name": "drift", "value": "report"},
                    ]
                },
            },
        }
        submit = Resource(
            name="submit-train",
            action="create",
            # JSON is YAML; the monitor's reason never holds a double quote.
            manifest=json.dumps(workflow, indent=2) + "\n",
            set_owner_reference=False,
            inputs=[Parameter(name=n) for n in _SUBMITTED],
            outputs=[Parameter(name="name", value_from=m.ValueFrom(json_path="{.metadata.name}"))],
        )
        with DAG(name="monitor-and-retrain"):
            watched = monitor(name="monitor")
            watched >> submit(  # type: ignore[operator]
                name="retrain",
                arguments=[
                    Parameter(name=n, value=ENV if n == "environment" else _monitor_output(n))
                    for n in _SUBMITTED
                ],
                when=f"{_monitor_output('retrain')} == true && {_param('retrain')} == true",
            )
    return template


def cron() -> CronWorkflow:
    """``churn-monitor-daily``: the monitor, daily at 06:00 UTC.

    One CronWorkflow for every cluster: each environment's overlay
    (platform/apps/churn-workflows/overlays/<env>) sets the environment it watches.
    """
    return CronWorkflow(
        name="churn-monitor-daily",
        namespace=argo.NAMESPACE,
        schedules=["0 6 * * *"],
        timezone="UTC",
        concurrency_policy="Forbid",
        starting_deadline_seconds=3600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        workflow_template_ref=m.WorkflowTemplateRef(name="churn-monitor"),
        active_deadline_seconds=argo.DEADLINE_SECONDS,
        service_account_name=argo.SERVICE_ACCOUNT,
        security_context=argo.pod_security_context(),
        arguments=[Parameter(name="environment", value="dev")],
        labels={"app.kubernetes.io/name": "churn-workflows", "app.kubernetes.io/part-of": "churn"},
    )


def outcomes() -> WorkflowTemplate:
    """The ``churn-outcomes`` WorkflowTemplate: one outcomes file into the store."""
    with WorkflowTemplate(
        name="churn-outcomes",
        entrypoint="load",
        annotations={
            "workflows.argoproj.io/description": (
                "Load a CSV or Parquet file of churn outcomes (prediction_id or customer_id, "
                "churned, observed_at) into the prediction store, checked like POST /v1/feedback."
            ),
        },
        arguments=[
            _environment(),
            argo.parameter(
                "source", "", "s3://churn-<env>-data/outcomes/<month>.csv (or .parquet)."
            ),
        ],
        **argo.workflow_settings(),  # type: ignore[arg-type]
    ) as template:
        load = argo.step(
            "load-outcomes",
            "outcomes",
            ["--source", _param("source"), "--output", f"{W}/outcomes"],
            outputs=[
                Parameter(name="report", value_from=m.ValueFrom(path=f"{W}/outcomes/outcomes.json"))
            ],
            memory="1Gi",
            env=argo.store_env(),
        )
        with DAG(name="load"):
            load(name="load-outcomes")
    return template
