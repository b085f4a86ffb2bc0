"""The churn model's training, validation and promotion pipeline.

Plain step functions live in ``churn_workflows.steps``; ``train`` and ``promote``
wire them into Argo WorkflowTemplates with Hera; ``render`` writes the manifests;
``demo`` runs the same steps in-process on this machine.
"""

from __future__ import annotations

__all__ = ["EXIT_TRANSIENT", "PipelineError", "Unreachable", "exit_code"]

# EX_TEMPFAIL: the Argo templates retry a step that exits with it.
EXIT_TRANSIENT = 75


class PipelineError(Exception):
    """A step refused its input: the message names what is wrong and where."""


class Unreachable(PipelineError):
    """A service the step needs (S3, MLflow, GitHub) did not answer: worth a retry."""


def exit_code(error: PipelineError) -> int:
    """The exit status a step's command reports for ``error``."""
    return EXIT_TRANSIENT if isinstance(error, Unreachable) else 1
