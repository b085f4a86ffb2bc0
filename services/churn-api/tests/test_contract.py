"""The service's request Structs state exactly the default contract file."""

from __future__ import annotations

from churn_api.contract import default_contract, feature_contract, request_fields


def test_the_structs_are_the_default_contract_file() -> None:
    assert feature_contract() == request_fields(default_contract())
