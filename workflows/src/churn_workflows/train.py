"""The ``churn-train`` WorkflowTemplate and the ``churn-retrain-nightly`` CronWorkflow.

DAG: ingest -> validate -> candidates -> train (one pod per candidate,
``withParam``) -> evaluate (pick the best, score its ONNX artifact against the
running model, gate) -> register (when the gate passed) -> promote (unless
dry run; the ``churn-promote`` template's ``promote``, which pins the model
as what serves or, with ``pin-as`` = ``shadow``, as the challenger scored
beside it: the same gate either way). Each task runs a step
module from the workflows image; data and reports move as artifacts through the
``churn-s3`` artifact repository. Rendered by ``churn_workflows.render``.
"""

from __future__ import annotations

from churn_contract import BUILTIN_CONTRACTS, DEFAULT_CONTRACT
from hera.workflows import (
    DAG,
    Artifact,
    CronWorkflow,
    Env,
    Parameter,
    SecretEnv,
    Task,
    WorkflowTemplate,
)
from hera.workflows import (
    models as m,
)

from churn_workflows import argo
from churn_workflows.pin import ENVIRONMENTS
from churn_workflows.promote import pin_as_parameter
from churn_workflows.steps.evaluate import GateConfig
from churn_workflows.steps.validate import Thresholds

__all__ = ["build", "nightly"]

W = argo.WORK
ENV = "{{workflow.parameters.environment}}"


def _param(name: str) -> str:
    return "{{workflow.parameters.%s}}" % name  # noqa: UP031 - Argo's braces, not Python's


def _register_output(key: str) -> str:
    return "{{tasks.register.outputs.parameters.%s}}" % key  # noqa: UP031 - Argo's braces


def _ingest_output(key: str) -> str:
    return "{{tasks.ingest.outputs.parameters.%s}}" % key  # noqa: UP031 - Argo's braces


def _github_env() -> list[Env | SecretEnv]:
    # Read the running pin through GitHub's API: the Secret holds a token and owner/name.
    return argo.github_env()


def build() -> WorkflowTemplate:
    """The ``churn-train`` WorkflowTemplate."""
    gate, limits = GateConfig(), Thresholds()
    with WorkflowTemplate(
        name="churn-train",
        entrypoint="pipeline",
        annotations={
            "workflows.argoproj.io/description": (
                "Validate data, train candidates in parallel, gate the best ONNX artifact "
                "against the running model, register it and open the promotion PR."
            ),
        },
        arguments=[
            argo.parameter(
                "environment",
                "dev",
                "Target environment (its pin is the baseline).",
                list(ENVIRONMENTS),
            ),
            argo.parameter(
                "data-source",
                "snapshot",
                "snapshot: s3://churn-<env>-data/snapshots/customers.parquet; "
                "synthetic: generated in the pod; or a URI of a .csv or .parquet file "
                "(s3://bucket/key, file:///path).",
            ),
            argo.parameter(
                "contract",
                DEFAULT_CONTRACT,
                "The feature contract: a built-in name ("
                + ", ".join(BUILTIN_CONTRACTS)
                + ") or the URI of a contract YAML file (s3://bucket/key.yaml).",
            ),
            argo.parameter(
                "reason",
                "manual",
                "Why this run: manual, nightly, or what churn-monitor saw (drift, live quality).",
            ),
            argo.parameter(
                "drift",
                "refuse",
                "refuse: feature drift above max-psi fails the run; report: it is reported "
                "(churn-monitor's retrains). Broken data refuses either way.",
                ["refuse", "report"],
            ),
            argo.parameter(
                "max-psi", str(limits.max_psi), "Largest PSI a feature may drift (number)."
            ),
            argo.parameter("min-roc-auc", str(gate.min_roc_auc), "Gate floor: ROC AUC (number)."),
            argo.parameter(
                "min-pr-auc-lift",
                str(gate.min_pr_auc_lift),
                "Gate floor: PR AUC over the holdout's base rate (number).",
            ),
            argo.parameter(
                "min-brier-skill",
                str(gate.min_brier_skill),
                "Gate floor: 1 - Brier / base-rate Brier (number).",
            ),
            argo.parameter(
                "min-improvement",
                str(gate.min_improvement),
                "The ROC AUC gain's lower 95% bound must exceed this (number).",
            ),
            argo.parameter(
                "serving-url",
                "",
                "churn-api's URL: the gate's baseline is what it serves (empty: the Git pin).",
            ),
            pin_as_parameter(),
            argo.parameter("dry-run", "false", "true: register but open no PR.", ["false", "true"]),
        ],
        **argo.workflow_settings(),  # type: ignore[arg-type]
    ) as template:
        data_in = Artifact(name="data", path=f"{W}/data.parquet")
        ingest = argo.step(
            "ingest",
            "ingest",
            [
                "--data-source",
                _param("data-source"),
                "--environment",
                ENV,
                "--output",
                f"{W}/data.parquet",
                "--digest-file",
                f"{W}/data-sha256",
                "--source-file",
                f"{W}/data-source",
            ],
            outputs=[
                Artifact(name="data", path=f"{W}/data.parquet"),
                Parameter(name="data-sha256", value_from=m.ValueFrom(path=f"{W}/data-sha256")),
                Parameter(name="data-uri", value_from=m.ValueFrom(path=f"{W}/data-source")),
            ],
        )
        validate = argo.step(
            "validate",
            "validate",
            [
                "--data",
                f"{W}/data.parquet",
                "--contract",
                _param("contract"),
                "--reference",
                f"s3://churn-{ENV}-data/reference/customers.parquet",
                "--max-psi",
                _param("max-psi"),
                "--drift",
                _param("drift"),
                "--report-dir",
                f"{W}/report",
                "--output",
                f"{W}/conformed.parquet",
            ],
            inputs=[data_in],
            outputs=[
                # The data in the contract's canonical columns: what every later step reads.
                Artifact(name="conformed", path=f"{W}/conformed.parquet", optional=True),
                Artifact(name="validation-report", path=f"{W}/report", optional=True),
                Parameter(
                    name="summary",
                    value_from=m.ValueFrom(path=f"{W}/report/validation.md", default="(no report)"),
                ),
            ],
        )
        list_candidates = argo.step(
            "candidates",
            "train",
            ["--list", f"{W}/candidates.json"],
            outputs=[
                Parameter(name="candidates", value_from=m.ValueFrom(path=f"{W}/candidates.json"))
            ],
            retries=False,
            memory="512Mi",
        )
        train = argo.step(
            "train",
            "train",
            [
                "--candidate",
                "{{inputs.parameters.candidate}}",
                "--data",
                f"{W}/data.parquet",
                "--contract",
                _param("contract"),
                "--data-uri",
                "{{inputs.parameters.data-uri}}",
                "--data-sha256",
                "{{inputs.parameters.data-sha256}}",
                "--tracking-uri",
                argo.MLFLOW_URI,
                "--result",
                f"{W}/result.json",
            ],
            inputs=[
                Parameter(name="candidate"),
                Parameter(name="data-uri"),
                Parameter(name="data-sha256"),
                data_in,
            ],
            outputs=[Parameter(name="result", value_from=m.ValueFrom(path=f"{W}/result.json"))],
            memory="4Gi",
            cpu="1",
        )
        evaluate = argo.step(
            "evaluate",
            "evaluate",
            [
                "--results",
                "{{inputs.parameters.results}}",
                "--data",
                f"{W}/data.parquet",
                "--data-sha256",
                "{{inputs.parameters.data-sha256}}",
                "--reference",
                f"s3://churn-{ENV}-data/reference/customers.parquet",
                "--tracking-uri",
                argo.MLFLOW_URI,
                "--environment",
                ENV,
                "--serving-url",
                _param("serving-url"),
                "--min-roc-auc",
                _param("min-roc-auc"),
                "--min-pr-auc-lift",
                _param("min-pr-auc-lift"),
                "--min-brier-skill",
                _param("min-brier-skill"),
                "--min-improvement",
                _param("min-improvement"),
                "--output-dir",
                f"{W}/evaluation",
            ],
            inputs=[Parameter(name="results"), Parameter(name="data-sha256"), data_in],
            outputs=[
                Parameter(name="promote", value_from=m.ValueFrom(path=f"{W}/evaluation/promote")),
                Parameter(name="run-id", value_from=m.ValueFrom(path=f"{W}/evaluation/run-id")),
                Parameter(
                    name="evidence", value_from=m.ValueFrom(path=f"{W}/evaluation/evaluation.md")
                ),
                Artifact(name="model", path=f"{W}/evaluation/model.onnx"),
                Artifact(name="evaluation", path=f"{W}/evaluation/evaluation.json"),
            ],
            memory="2Gi",
            env=_github_env(),
        )
        register = argo.step(
            "register",
            "register",
            [
                "--artifact",
                f"{W}/model.onnx",
                "--run-id",
                "{{inputs.parameters.run-id}}",
                "--data",
                f"{W}/data.parquet",
                "--data-uri",
                "{{inputs.parameters.data-uri}}",
                "--data-sha256",
                "{{inputs.parameters.data-sha256}}",
                "--evaluation",
                f"{W}/evaluation.json",
                "--bucket",
                f"s3://churn-{ENV}-models",
                "--tracking-uri",
                argo.MLFLOW_URI,
                "--output",
                f"{W}/registered",
            ],
            inputs=[
                Parameter(name="run-id"),
                Parameter(name="data-uri"),
                Parameter(name="data-sha256"),
                data_in,
                Artifact(name="model", path=f"{W}/model.onnx"),
                Artifact(name="evaluation", path=f"{W}/evaluation.json"),
            ],
            outputs=[
                Parameter(name=key, value_from=m.ValueFrom(path=f"{W}/registered/{key}"))
                for key in ("uri", "sha256", "version", "lineage-uri")
            ],
            memory="2Gi",
            # The lineage record names the workflow that made the model.
            env=[
                Env(name="ARGO_WORKFLOW_NAME", value="{{workflow.name}}"),
                Env(name="ARGO_WORKFLOW_UID", value="{{workflow.uid}}"),
            ],
        )
        raw = Artifact(name="data", from_="{{tasks.ingest.outputs.artifacts.data}}")
        data = Artifact(name="data", from_="{{tasks.validate.outputs.artifacts.conformed}}")
        with DAG(name="pipeline"):
            Task(name="ingest", template=ingest)
            Task(name="validate", template=validate, arguments=[raw], depends="ingest")
            Task(name="candidates", template=list_candidates, depends="ingest")
            Task(
                name="train",
                template=train,
                depends="validate && candidates",
                with_param="{{tasks.candidates.outputs.parameters.candidates}}",
                arguments=[
                    Parameter(name="candidate", value="{{item}}"),
                    Parameter(name="data-uri", value=_ingest_output("data-uri")),
                    Parameter(name="data-sha256", value=_ingest_output("data-sha256")),
                    data,
                ],
            )
            Task(
                name="evaluate",
                template=evaluate,
                depends="train",
                arguments=[
                    Parameter(name="results", value="{{tasks.train.outputs.parameters.result}}"),
                    Parameter(name="data-sha256", value=_ingest_output("data-sha256")),
                    data,
                ],
            )
            Task(
                name="register",
                template=register,
                depends="evaluate",
                when="{{tasks.evaluate.outputs.parameters.promote}} == true",
                arguments=[
                    Parameter(name="run-id", value="{{tasks.evaluate.outputs.parameters.run-id}}"),
                    Parameter(name="data-uri", value=_ingest_output("data-uri")),
                    Parameter(name="data-sha256", value=_ingest_output("data-sha256")),
                    data,
                    Artifact(name="model", from_="{{tasks.evaluate.outputs.artifacts.model}}"),
                    Artifact(
                        name="evaluation", from_="{{tasks.evaluate.outputs.artifacts.evaluation}}"
                    ),
                ],
            )
            Task(
                name="promote",
                template_ref=m.TemplateRef(name="churn-promote", template="promote"),
                # Not plain "register": a register skipped by a failed gate must skip this too.
                depends="register.Succeeded",
                when=f"{_param('dry-run')} == false",
                arguments=[
                    Parameter(name="environment", value=ENV),
                    Parameter(name="pin-as", value=_param("pin-as")),
                    *(
                        Parameter(name=f"model-{key}", value=_register_output(key))
                        for key in ("uri", "sha256", "version")
                    ),
                    Parameter(
                        name="evidence",
                        value="{{tasks.evaluate.outputs.parameters.evidence}}\n\n"
                        "{{tasks.validate.outputs.parameters.summary}}",
                    ),
                ],
            )
    return template


def nightly() -> CronWorkflow:
    """``churn-retrain-nightly``: ``churn-train`` for dev on the latest snapshot, 02:00 UTC."""
    return CronWorkflow(
        name="churn-retrain-nightly",
        namespace=argo.NAMESPACE,
        schedules=["0 2 * * *"],
        timezone="UTC",
        concurrency_policy="Forbid",
        starting_deadline_seconds=3600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        workflow_template_ref=m.WorkflowTemplateRef(name="churn-train"),
        # Repeated from the template so the Cron's own spec carries the deadline policies check.
        active_deadline_seconds=argo.DEADLINE_SECONDS,
        service_account_name=argo.SERVICE_ACCOUNT,
        security_context=argo.pod_security_context(),
        arguments=[
            Parameter(name="environment", value="dev"),
            Parameter(name="data-source", value="snapshot"),
        ],
        labels={"app.kubernetes.io/name": "churn-workflows", "app.kubernetes.io/part-of": "churn"},
    )
