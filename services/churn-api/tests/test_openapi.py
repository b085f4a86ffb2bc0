"""The OpenAPI document: it states what the service enforces, and schemathesis agrees.

schemathesis generates requests from the document, valid and invalid ones, sends
them to the app and checks that none gets a 5xx, that valid bodies are accepted,
invalid ones rejected, and that every response matches the documented status
codes, content types and schemas.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
import schemathesis
from churn_api.app import create_app
from churn_api.capture import CaptureSettings
from churn_api.contract import default_contract, feature_contract, request_types
from churn_api.model import Model
from churn_api.openapi import openapi_document
from churn_store.outcomes import OutcomeError, OutcomeRecord, outcome_from_record
from hypothesis import HealthCheck, settings
from litestar.testing import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from service_testing import make_settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    # Every schema-valid body is accepted: 116.0 is an integer to JSON Schema and to the service.
    positive_data_acceptance,
]


MAX_BATCH = 20
# The document the app serves for these settings (test_the_served_schema_is_this_one checks it).
schema = schemathesis.openapi.from_dict(
    openapi_document(request_types(default_contract(), MAX_BATCH), auth=False)
)


# A generated outcome may be dated in the future, a 422 JSON Schema cannot foresee; the
# command-line run (test_schemathesis.py) holds POST /v1/feedback to 202 or 422 instead.
CHECKS_OF: dict[str, list[Any]] = {
    "/v1/feedback": [check for check in CHECKS if check is not positive_data_acceptance]
}


@pytest.fixture(scope="module")
def app(
    model_path: Path, model_sha256: str, model: Model, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    store = tmp_path_factory.mktemp("openapi") / "predictions.db"
    return create_app(
        make_settings(model_path, model_sha256, max_batch=MAX_BATCH),
        model=model,
        capture=CaptureSettings(store_url=f"sqlite:///{store}"),  # POST /v1/feedback's store
    )


def test_the_served_schema_is_this_one(app: Any) -> None:
    with TestClient(app=app) as client:
        served = client.get("/schema/openapi.json").json()
    assert served == schema.raw_schema


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases on every run: a failure reproduces
)
def test_the_api_conforms_to_its_schema(case: Any, app: Any) -> None:
    case.call_and_validate(app=app, checks=CHECKS_OF.get(case.operation.path, CHECKS))


def test_the_schema_states_the_contract_bounds(client: TestClient[Any]) -> None:
    document = client.get("/schema/openapi.json").json()
    request = document["components"]["schemas"]["PredictRequest"]
    contract = feature_contract()
    for name, spec in contract.items():
        field = request["properties"][name]
        if spec["type"] == "category":
            assert field["enum"] == spec["categories"], name
        elif spec["type"] in {"int", "float"}:
            assert (field["minimum"], field["maximum"]) == (spec["min"], spec["max"]), name
            assert field["type"] == "number"
            assert field.get("multipleOf") == (1 if spec["type"] == "int" else None), name
    assert set(request["required"]) == set(contract)
    assert set(request["properties"]) == {*contract, "customer_id"}
    assert request["additionalProperties"] is False
    batch = document["components"]["schemas"]["BatchRequest"]["properties"]["records"]
    assert (batch["minItems"], batch["maxItems"]) == (1, 10_000)


def test_the_schema_documents_auth_only_when_keys_are_set(
    model_path: Path, model_sha256: str, model: Model
) -> None:
    settings_ = make_settings(model_path, model_sha256, api_keys=frozenset({"k"}))
    with TestClient(app=create_app(settings_, model=model)) as client:
        document = client.get("/schema/openapi.json", headers={"X-API-Key": "k"}).json()
    assert document["paths"]["/v1/predict"]["post"]["security"] == [{"ApiKey": []}]
    assert document["paths"]["/healthz"]["get"]["security"] == []


def test_the_documented_outcome_record_names_exactly_one_id_as_the_rule_does() -> None:
    schema_ = openapi_document(request_types(default_contract()), auth=False)
    validator = jsonschema.Draft202012Validator(schema_["components"]["schemas"]["OutcomeRecord"])
    now = datetime.now(UTC)
    states = ("absent", "null", "set")
    for prediction_id, customer_id in itertools.product(states, states):
        record: dict[str, Any] = {"churned": True, "observed_at": "2026-01-01T00:00:00Z"}
        for field, state, value in (
            ("prediction_id", prediction_id, "00000000-0000-4000-8000-000000000000"),
            ("customer_id", customer_id, "c-1"),
        ):
            if state != "absent":
                record[field] = value if state == "set" else None
        try:
            outcome_from_record(msgspec.convert(record, OutcomeRecord, strict=False), "$", now)
            accepted = True
        except OutcomeError:
            accepted = False
        assert validator.is_valid(record) is accepted, record
