"""The ``churn-promote`` WorkflowTemplate: open the pull request that edits one pin.

The pin is ``model.yaml`` (what serves) or, with ``pin-as`` = ``shadow``,
``shadow.yaml`` (the challenger churn-api scores beside it).

``churn-train`` calls its ``promote`` template after a passed gate; it can also
be submitted alone from the Argo Workflows UI to promote a registered version
to another environment (dev's model to staging, say). The pod reads the GitHub
App's credentials and the repository from the Secret ``churn-workflows-github``,
and the prediction store's URL (the live shadow evidence) from
``churn-predictions-db`` when that Secret exists. Rendered by
``churn_workflows.render``.
"""

from __future__ import annotations

from hera.workflows import Parameter, Steps, WorkflowTemplate

from churn_workflows import argo
from churn_workflows.pin import ENVIRONMENTS, PIN_KINDS

__all__ = ["build", "pin_as_parameter"]

_INPUTS = ("environment", "pin-as", "model-uri", "model-sha256", "model-version", "evidence")


def pin_as_parameter() -> Parameter:
    """The form's choice, shared with churn-train: which file the pull request edits."""
    return argo.parameter(
        "pin-as",
        "model",
        "model: serve the candidate (model.yaml); shadow: score it beside the served model "
        "as the challenger (shadow.yaml), never in its place.",
        [str(kind) for kind in PIN_KINDS],
    )


def build() -> WorkflowTemplate:
    """The ``churn-promote`` WorkflowTemplate."""
    with WorkflowTemplate(
        name="churn-promote",
        entrypoint="main",
        annotations={
            "workflows.argoproj.io/description": (
                "Open a pull request that pins a registered churn-model version in "
                "platform/apps/churn-api/overlays/<environment>/model.yaml, or as the "
                "shadow in shadow.yaml."
            ),
        },
        arguments=[
            argo.parameter(
                "environment", "dev", "Environment whose pin changes.", list(ENVIRONMENTS)
            ),
            pin_as_parameter(),
            argo.parameter(
                "model-uri",
                "",
                "MODEL_URI: s3://churn-<env>-models/churn-model/sha256/<sha256>.onnx",
            ),
            argo.parameter("model-sha256", "", "MODEL_SHA256: 64 lower-case hex digits."),
            argo.parameter("model-version", "", "MODEL_VERSION: the churn-model registry version."),
            argo.parameter(
                "evidence", "Promoted from the Argo Workflows UI.", "The PR body (Markdown)."
            ),
        ],
        **argo.workflow_settings(),  # type: ignore[arg-type]
    ) as template:
        promote = argo.step(
            "promote",
            "promote",
            [
                "--environment",
                "{{inputs.parameters.environment}}",
                "--uri",
                "{{inputs.parameters.model-uri}}",
                "--sha256",
                "{{inputs.parameters.model-sha256}}",
                "--version",
                "{{inputs.parameters.model-version}}",
                "--pin-as",
                "{{inputs.parameters.pin-as}}",
                "--evidence",
                "{{inputs.parameters.evidence}}",
            ],
            inputs=[Parameter(name=name) for name in _INPUTS],
            memory="256Mi",
            # The live shadow evidence comes from the prediction store; without the Secret
            # the PR says there is none, and the promotion goes on.
            env=[*argo.github_env(), *argo.store_env(optional=True)],
        )
        # The entrypoint passes the form's values; churn-train calls "promote" directly.
        with Steps(name="main"):
            promote(
                name="promote",
                arguments=[
                    Parameter(name=name, value="{{workflow.parameters.%s}}" % name)  # noqa: UP031
                    for name in _INPUTS
                ],
            )
    return template
