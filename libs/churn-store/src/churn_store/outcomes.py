"""Ground truth as the store takes it: one outcome record, its checks, the customer-id hash.

A record names a ``prediction_id`` (from a prediction's answer) or a
``customer_id`` (meaning that customer's latest captured prediction made at or
before ``observed_at``). ``outcome_from_record`` is the one place the rules the
types cannot say live: ``POST /v1/feedback`` applies them to a JSON body, the
bulk loader of the workflows (``churn_workflows.steps.outcomes``) to files.
Each side maps ``OutcomeError`` to its own answer (a 422, a refused file).

A ``customer_id`` is stored as given, or as HMAC-SHA256 under a key when one
is set, so the store holds no customer identifier in clear and an outcome by
customer id still finds the prediction captured under the same key.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

import msgspec

from churn_store.prediction_store import Outcome

__all__ = [
    "CLOCK_SKEW",
    "ONE_ID_SCHEMA",
    "OutcomeError",
    "OutcomeRecord",
    "hash_customer_id",
    "hashed_outcome",
    "outcome_from_record",
]

CLOCK_SKEW: Final = timedelta(minutes=5)
_UUID: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class OutcomeRecord(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One outcome: whether the customer churned, observed when."""

    churned: bool
    observed_at: Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339 with offset")]
    prediction_id: Annotated[str, msgspec.Meta(pattern=_UUID)] | None = None
    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None


class OutcomeError(ValueError):
    """A record the types accept but the rules refuse: ``path`` names where, ``reason`` why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# outcome_from_record's first rule in JSON Schema, for the OpenAPI document: exactly one of the
# two ids is a string (the other absent or null). The second rule, observed_at not in the
# future, JSON Schema cannot state.
ONE_ID_SCHEMA: Final = {
    "oneOf": [
        {
            "required": [named],
            "properties": {named: {"type": "string"}, other: {"type": "null"}},
        }
        for named, other in (("prediction_id", "customer_id"), ("customer_id", "prediction_id"))
    ]
}


def outcome_from_record(record: OutcomeRecord, path: str, now: datetime) -> Outcome:
    """Check what the types cannot say; raise ``OutcomeError`` naming ``path``."""
    if (record.prediction_id is None) == (record.customer_id is None):
        raise OutcomeError(path, "name exactly one of prediction_id and customer_id")
    if record.observed_at > now + CLOCK_SKEW:
        reason = f"observed_at {record.observed_at.isoformat()} is in the future"
        raise OutcomeError(f"{path}.observed_at", reason)
    return Outcome(
        prediction_id=record.prediction_id,
        customer_id=record.customer_id,
        churned=record.churned,
        observed_at=record.observed_at.astimezone(UTC),
    )


def hash_customer_id(customer_id: str, key: bytes | None) -> str:
    """The id as the store holds it: HMAC-SHA256 hex under ``key``, or as given."""
    if key is None:
        return customer_id
    return hmac.new(key, customer_id.encode(), hashlib.sha256).hexdigest()


def hashed_outcome(outcome: Outcome, key: bytes) -> Outcome:
    """``outcome`` with its ``customer_id`` (if any) as the store holds it under ``key``."""
    if outcome.customer_id is None:
        return outcome
    hashed = hash_customer_id(outcome.customer_id, key)
    return Outcome(None, hashed, outcome.churned, outcome.observed_at)
