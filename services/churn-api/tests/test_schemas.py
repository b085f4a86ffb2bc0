"""Schemas: strict decoding, and msgspec's errors turned into a path and a reason."""

from __future__ import annotations

import msgspec
import pytest
from churn_api.contract import FEATURES, StrictStruct
from churn_api.errors import validation_error
from churn_api.schemas import (
    BatchResponse,
    ErrorResponse,
    PredictRequest,
    PredictResponse,
    batch_request_type,
)
from service_testing import VALID_RECORD


def decode_error_detail(body: object, type_: type = PredictRequest) -> tuple[str, str]:
    with pytest.raises(msgspec.ValidationError) as raised:
        msgspec.json.decode(msgspec.json.encode(body), type=type_)
    (detail,) = validation_error(raised.value).details
    return detail.path, detail.reason


def test_every_struct_is_strict() -> None:
    for struct in (
        PredictRequest,
        PredictResponse,
        BatchResponse,
        ErrorResponse,
        batch_request_type(5),
    ):
        assert issubclass(struct, StrictStruct)
        assert struct.__struct_config__.forbid_unknown_fields
        assert struct.__struct_config__.frozen


def test_request_is_the_contract_plus_an_optional_customer_id() -> None:
    assert PredictRequest.__struct_fields__ == ("customer_id", *FEATURES)
    record = msgspec.json.decode(msgspec.json.encode(VALID_RECORD), type=PredictRequest)
    assert record.customer_id is None


def test_no_coercion_from_strings() -> None:
    assert decode_error_detail({**VALID_RECORD, "tenure": "12"}) == (
        "$.tenure",
        "Expected `float`, got `str`",
    )
    assert decode_error_detail({**VALID_RECORD, "senior_citizen": "true"}) == (
        "$.senior_citizen",
        "Expected `bool`, got `str`",
    )


def test_an_integer_field_takes_any_json_number_with_an_integral_value() -> None:
    # JSON Schema counts 62.0 as an integer; so does the decoder (multipleOf 1).
    for value in (62, 62.0):
        record = msgspec.json.decode(
            msgspec.json.encode({**VALID_RECORD, "support_tickets": value}), type=PredictRequest
        )
        assert record.support_tickets == 62
    assert decode_error_detail({**VALID_RECORD, "support_tickets": 62.5}) == (
        "$.support_tickets",
        "Expected `float` that's a multiple of 1.0",
    )


def test_missing_and_unknown_fields_name_the_field() -> None:
    missing = {k: v for k, v in VALID_RECORD.items() if k != "senior_citizen"}
    assert decode_error_detail(missing) == ("$.senior_citizen", "required field is missing")
    assert decode_error_detail({**VALID_RECORD, "tenur": 3}) == ("$.tenur", "unknown field")


def test_a_nested_path_points_at_the_record() -> None:
    records = [VALID_RECORD] * 3 + [{**VALID_RECORD, "tenure": -1}]
    path, reason = decode_error_detail({"records": records}, batch_request_type(10))
    assert (path, reason) == ("$.records[3].tenure", "Expected `float` >= 0.0")


def test_batch_size_is_bounded_both_ways() -> None:
    batch = batch_request_type(2)
    assert decode_error_detail({"records": []}, batch) == (
        "$.records",
        "Expected `array` of length >= 1",
    )
    assert decode_error_detail({"records": [VALID_RECORD] * 3}, batch) == (
        "$.records",
        "Expected `array` of length <= 2",
    )


def test_customer_id_is_bounded() -> None:
    assert (
        decode_error_detail({**VALID_RECORD, "customer_id": ""})[1]
        == "Expected `str` of length >= 1"
    )
    assert (
        decode_error_detail({**VALID_RECORD, "customer_id": "x" * 129})[1]
        == "Expected `str` of length <= 128"
    )
