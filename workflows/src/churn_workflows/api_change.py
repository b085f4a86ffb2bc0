"""API changes between the serving model and a candidate: what the promotion PR says.

The request a client sends is the feature contract the model embeds, so a
promotion can change the API. ``api_changes`` reads both artifacts' contracts
and lists each field added, removed, retyped, narrowed or widened; the PR title
says "breaking API change" when any may refuse a request valid before, and
``markdown`` is the table the PR body carries. A bootstrap pin (nothing served)
has no API to break.
"""

from __future__ import annotations

from churn_contract import ContractChange, diff_contracts

from churn_workflows import PipelineError
from churn_workflows.pin import Pin
from churn_workflows.steps.export import artifact_contract
from churn_workflows.storage import read_bytes

__all__ = ["BREAKING", "api_changes", "markdown", "title_suffix"]

BREAKING = "breaking API change"


def api_changes(running: Pin, candidate: Pin) -> list[ContractChange] | str:
    """The request fields that differ; a string saying why when they cannot be read."""
    if running.is_bootstrap:
        return []
    try:
        before = artifact_contract(read_bytes(running.uri))
        after = artifact_contract(read_bytes(candidate.uri))
    except PipelineError as exc:
        return f"the contracts could not be compared: {exc}"
    return diff_contracts(before, after)


def title_suffix(changes: list[ContractChange] | str) -> str:
    """`` (breaking API change: 3 fields)`` or nothing."""
    if isinstance(changes, str) or not any(c.breaking for c in changes):
        return ""
    return f" ({BREAKING}: {len(changes)} field{'s' if len(changes) > 1 else ''})"


def markdown(changes: list[ContractChange] | str) -> str:
    """The PR body's API section: a table of the changed request fields."""
    if isinstance(changes, str):
        return f"### API\n\nUnknown: {changes}.\n\n"
    if not changes:  # the same request fields: nothing to say
        return ""
    breaking = any(c.breaking for c in changes)
    lines = [
        f"### API: {BREAKING.upper() if breaking else 'compatible change'}",
        "",
        "Clients must send the new fields once this pin serves."
        if breaking
        else "Every request valid before stays valid.",
        "",
        "| field | change | serving | candidate |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{c.feature}` | {c.change} | {c.before} | {c.after} |" for c in changes]
    return "\n".join(lines) + "\n\n"
