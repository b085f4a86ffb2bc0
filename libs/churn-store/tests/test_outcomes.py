"""Outcome records: the checks the types cannot say, and the customer-id hash."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from churn_store.outcomes import (
    CLOCK_SKEW,
    OutcomeError,
    OutcomeRecord,
    hash_customer_id,
    hashed_outcome,
    outcome_from_record,
)
from churn_store.prediction_store import Outcome

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PREDICTION = "0b7c1c7e-6f0e-4a43-9d5c-3f1f7f0c2a11"


def record(**fields: object) -> OutcomeRecord:
    return msgspec.convert(
        {"churned": True, "observed_at": NOW.isoformat(), **fields}, OutcomeRecord, strict=False
    )


def test_a_record_becomes_an_outcome_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    observed = datetime(2026, 11, 30, 9, 0, tzinfo=paris)
    outcome = outcome_from_record(
        record(prediction_id=PREDICTION, observed_at=observed.isoformat()), "$", NOW
    )
    assert outcome == Outcome(PREDICTION, None, True, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    assert outcome.observed_at.tzinfo is UTC


@pytest.mark.parametrize(
    "fields",
    [{}, {"prediction_id": PREDICTION, "customer_id": "c-1"}],
    ids=["neither", "both"],
)
def test_a_record_names_exactly_one_of_prediction_and_customer(fields: dict[str, str]) -> None:
    with pytest.raises(OutcomeError) as caught:
        outcome_from_record(record(**fields), "row 7", NOW)
    assert caught.value.path == "row 7"
    assert caught.value.reason == "name exactly one of prediction_id and customer_id"


def test_an_outcome_from_the_future_is_refused_beyond_the_clock_skew() -> None:
    within = (NOW + CLOCK_SKEW).isoformat()
    assert outcome_from_record(record(customer_id="c", observed_at=within), "$", NOW)
    beyond = (NOW + CLOCK_SKEW + timedelta(seconds=1)).isoformat()
    with pytest.raises(OutcomeError) as caught:
        outcome_from_record(record(customer_id="c", observed_at=beyond), "$.records[2]", NOW)
    assert caught.value.path == "$.records[2].observed_at"
    assert "is in the future" in caught.value.reason


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"prediction_id": "not-a-uuid"}, "$.prediction_id"),
        ({"customer_id": ""}, "$.customer_id"),
        ({"customer_id": "c", "observed_at": "2026-11-30T12:00:00"}, "$.observed_at"),
        ({"customer_id": "c", "extra": 1}, "extra"),
    ],
)
def test_the_record_type_refuses_malformed_fields(fields: dict[str, object], where: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=where.replace("$", r"\$")):
        record(**fields)


def test_customer_ids_are_hashed_with_hmac_sha256_only_under_a_key() -> None:
    expected = hmac.new(b"k", b"alice", hashlib.sha256).hexdigest()
    assert hash_customer_id("alice", b"k") == expected
    assert hash_customer_id("alice", None) == "alice"
    by_customer = Outcome(None, "alice", False, NOW)
    assert hashed_outcome(by_customer, b"k") == Outcome(None, expected, False, NOW)
    by_prediction = Outcome(PREDICTION, None, False, NOW)
    assert hashed_outcome(by_prediction, b"k") is by_prediction
