"""Which feature contract a run uses: a built-in name or a YAML file at a URI.

``churn`` (the default) and ``telco`` ship with ``churn_contract``; anything
else is read from ``file://``, ``s3://`` or a path. A contract with mistakes
is a PipelineError listing each.
"""

from __future__ import annotations

from churn_contract import BUILTIN_CONTRACTS, Contract, ContractError, builtin_contract
from churn_contract import parse_contract as _parse

from churn_workflows import PipelineError
from churn_workflows.storage import read_bytes

__all__ = ["load_contract"]


def load_contract(reference: str) -> Contract:
    """The contract ``reference`` names (a built-in name, a URI or a path)."""
    try:
        if reference in BUILTIN_CONTRACTS:
            return builtin_contract(reference)
        return _parse(read_bytes(reference), reference)
    except ContractError as exc:
        raise PipelineError(str(exc)) from None
