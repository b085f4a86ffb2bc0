"""The service takes its API from the model it serves: request types, bounds and OpenAPI.

One image, two model families: a model trained on the ``telco`` contract is
served with Telco's fields, strictly, and the default model with its own; a
model whose graph disagrees with the contract it embeds is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from churn_api.app import create_app
from churn_api.contract import (
    CustomerRecord,
    default_contract,
    feature_contract,
    request_fields,
    request_types,
)
from churn_api.fixture import fixture_onnx_bytes
from churn_api.model import Model, model_from_bytes
from churn_api.storage import ModelLoadError
from churn_contract import builtin_contract, contract_json, example_record
from litestar.testing import TestClient
from service_testing import make_settings

TELCO = builtin_contract("telco")
TELCO_RECORD: dict[str, Any] = {
    **example_record(TELCO),
    "tenure": 3,
    "contract_type": "month-to-month",
    "internet_service": "fiber-optic",
    "monthly_charges": 89.5,
    "total_charges": 268.5,
}


@pytest.fixture(scope="module")
def telco_bytes() -> bytes:
    return fixture_onnx_bytes(version="7", contract=TELCO)


@pytest.fixture(scope="module")
def telco_model(telco_bytes: bytes) -> Model:
    return model_from_bytes(telco_bytes, hashlib.sha256(telco_bytes).hexdigest(), "7")


@pytest.fixture
def telco_client(
    telco_bytes: bytes, telco_model: Model, tmp_path: Path
) -> Iterator[TestClient[Any]]:
    path = tmp_path / "telco.onnx"
    path.write_bytes(telco_bytes)
    settings = make_settings(path, telco_model.sha256, max_batch=3)
    with TestClient(app=create_app(settings, model=telco_model)) as client:
        yield client


def test_the_default_request_fields_are_the_default_contract_file() -> None:
    assert feature_contract() == request_fields(default_contract())


def test_request_types_are_built_from_any_contract() -> None:
    types = request_types(TELCO, 4)
    assert issubclass(types.record, CustomerRecord)
    assert types.record.__struct_fields__ == ("customer_id", *TELCO.features)
    record = types.decode_one.decode(msgspec.json.encode(TELCO_RECORD))
    assert (record.tenure, record.customer_id) == (3, None)
    assert types.warm_up.contract_type == "month-to-month"  # type: ignore[attr-defined]


def test_a_model_serves_the_api_of_the_contract_it_embeds(
    telco_client: TestClient[Any], telco_model: Model
) -> None:
    assert telco_model.contract == TELCO
    answer = telco_client.post("/v1/predict", json={**TELCO_RECORD, "customer_id": "7590-VHVEG"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["customer_id"], body["model_version"]) == ("7590-VHVEG", "7")
    expected = telco_model.onnx.probabilities([telco_model.types.record(**TELCO_RECORD)])[0]
    assert body["probability"] == pytest.approx(expected, abs=1e-6)
    batch = telco_client.post("/v1/predict/batch", json={"records": [TELCO_RECORD] * 3})
    assert batch.status_code == 200
    assert len(batch.json()["predictions"]) == 3


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        ({"support_tickets": 1}, "$.support_tickets", "unknown field"),
        ({"tenure": "3"}, "$.tenure", "Expected `float`, got `str`"),
        ({"tenure": 3.5}, "$.tenure", "multiple of 1.0"),
        ({"total_charges": 100_001.0}, "$.total_charges", "Expected `float` <= 100000.0"),
        ({"contract_type": "Month-to-month"}, "$.contract_type", "Invalid enum value"),
        ({"partner": "Yes"}, "$.partner", "Expected `bool`, got `str`"),
    ],
)
def test_the_served_contract_is_enforced_strictly(
    telco_client: TestClient[Any], change: dict[str, Any], path: str, reason: str
) -> None:
    answer = telco_client.post("/v1/predict", json={**TELCO_RECORD, **change})
    assert answer.status_code == 422, answer.text
    (detail,) = answer.json()["detail"]
    assert detail["path"] == path
    assert reason in detail["reason"]


def test_a_batch_over_the_configured_size_is_refused(telco_client: TestClient[Any]) -> None:
    answer = telco_client.post("/v1/predict/batch", json={"records": [TELCO_RECORD] * 4})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["path"] == "$.records"


def test_the_openapi_document_describes_the_served_contract(
    telco_client: TestClient[Any],
) -> None:
    document = telco_client.get("/schema/openapi.json").json()
    assert "'telco'" in document["info"]["description"]
    request = document["components"]["schemas"]["PredictRequest"]
    assert set(request["properties"]) == {*TELCO.features, "customer_id"}
    assert set(request["required"]) == set(TELCO.features)
    assert request["properties"]["tenure"] == {
        "type": "number",
        "minimum": 0,
        "maximum": 120,
        "multipleOf": 1,
        "description": "Months as a customer.",
    }
    assert request["properties"]["multiple_lines"]["enum"] == sorted(
        ["yes", "no", "no-phone-service"]
    )
    batch = document["components"]["schemas"]["BatchRequest"]["properties"]["records"]
    assert batch["maxItems"] == 3


def test_the_openapi_document_waits_for_a_model(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "missing.onnx", "0" * 64)
    with TestClient(app=create_app(settings)) as client:
        answer = client.get("/schema/openapi.json")
    assert answer.status_code == 503


def test_a_model_whose_graph_disagrees_with_its_contract_is_refused() -> None:
    # The default model's graph, with the telco contract written into its metadata.
    data = fixture_onnx_bytes(contract_json=contract_json(TELCO))
    with pytest.raises(ModelLoadError, match="model inputs differ from the contract"):
        model_from_bytes(data, hashlib.sha256(data).hexdigest(), "1")


def test_a_model_with_a_broken_contract_is_refused() -> None:
    data = fixture_onnx_bytes(contract_json='{"name": "x"}')
    with pytest.raises(
        ModelLoadError, match=r"contract_mismatch: contract churn\.feature_contract is"
    ):
        model_from_bytes(data, hashlib.sha256(data).hexdigest(), "1")
