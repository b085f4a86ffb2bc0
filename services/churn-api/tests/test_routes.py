"""Routes through Litestar's TestClient: answers, every client mistake, auth, readiness."""

from __future__ import annotations

import json
import math
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from churn_api.app import create_app
from churn_api.contract import CUSTOMER_ID_MAX_LENGTH, CustomerFeatures
from churn_api.model import Model
from churn_api.routes import new_uuid
from churn_contract import Contract
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from service_testing import VALID_RECORD, make_settings, wait_loaded

JSON = {"content-type": "application/json"}


def raw(
    client: TestClient[Any], path: str, body: bytes, headers: dict[str, str] | None = None
) -> Any:
    return client.post(path, content=body, headers=headers if headers is not None else JSON)


def assert_client_error(response: Any, status: int, path: str, reason: str) -> None:
    """A 4xx whose JSON body names the path and the reason."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    assert [d["path"] for d in body["detail"]] == [path]
    assert reason in body["detail"][0]["reason"]


def test_predict_one(client: TestClient[Any], model: Model) -> None:
    response = client.post("/v1/predict", json={**VALID_RECORD, "customer_id": "c-42"})
    assert response.status_code == 200
    body = response.json()
    assert body["customer_id"] == "c-42"
    assert body["model_version"] == "1"
    assert body["probability"] == pytest.approx(model.onnx.probabilities([_record()])[0], abs=1e-6)
    assert body["churn"] is (body["probability"] >= model.threshold)
    stamp = datetime.fromisoformat(body["timestamp"])
    assert stamp.tzinfo is not None
    assert stamp.utcoffset() == UTC.utcoffset(None)
    assert body["timestamp"].endswith("Z")


def test_customer_id_is_a_uuid_when_absent(client: TestClient[Any]) -> None:
    first = client.post("/v1/predict", json=VALID_RECORD).json()["customer_id"]
    second = client.post("/v1/predict", json=VALID_RECORD).json()["customer_id"]
    assert uuid.UUID(first).version == 4
    assert first != second


def test_ids_are_distinct_version_4_uuids_across_draws() -> None:
    ids = [new_uuid() for _ in range(1000)]  # several draws of random bytes
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_a_forked_child_never_repeats_its_parents_ids() -> None:
    new_uuid()  # the parent now holds ids drawn but not handed out
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe and exits
        os.write(writer, " ".join(new_uuid() for _ in range(3)).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    with os.fdopen(reader) as pipe:
        from_child = pipe.read().split()
    from_parent = [new_uuid() for _ in range(3)]
    assert len(from_child) == 3
    assert not set(from_child) & set(from_parent)


def test_batch_answers_each_record_in_order(client: TestClient[Any], model: Model) -> None:
    records = [{**VALID_RECORD, "tenure": t, "customer_id": f"c{t}"} for t in range(0, 120, 7)]
    response = client.post("/v1/predict/batch", json={"records": records})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [p["customer_id"] for p in predictions] == [r["customer_id"] for r in records]
    singles = [client.post("/v1/predict", json=r).json()["probability"] for r in records]
    assert [p["probability"] for p in predictions] == pytest.approx(singles, abs=1e-12)
    assert len({p["probability"] for p in predictions}) == len(records)  # tenure matters


@pytest.mark.parametrize(
    ("body", "path", "reason"),
    [
        (b'{"tenure": NaN}', "$", "JSON is malformed"),
        (b'{"tenure": Infinity}', "$", "JSON is malformed"),
        (b'{"tenure": 3,', "$", "Input data was truncated"),
        (b"", "$", "Input data was truncated"),
    ],
    ids=["NaN", "Infinity", "truncated", "empty"],
)
def test_malformed_json_is_400(
    client: TestClient[Any], body: bytes, path: str, reason: str
) -> None:
    assert_client_error(raw(client, "/v1/predict", body), 400, path, reason)


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        ({"monthly_charges": "nan"}, "$.monthly_charges", "Expected `float`, got `str`"),
        ({"monthly_charges": 1000.5}, "$.monthly_charges", "Expected `float` <= 1000.0"),
        ({"tenure": -1}, "$.tenure", "Expected `float` >= 0.0"),
        ({"tenure": 121}, "$.tenure", "Expected `float` <= 120.0"),
        ({"tenure": 1.5}, "$.tenure", "Expected `float` that's a multiple of 1.0"),
        ({"contract_type": "weekly"}, "$.contract_type", "Invalid enum value 'weekly'"),
        ({"paperless_billing": "yes"}, "$.paperless_billing", "Expected `bool`, got `str`"),
        ({"support_tickets": None}, "$.support_tickets", "Expected `float`, got `null`"),
        ({"extra": 1}, "$.extra", "unknown field"),
    ],
    ids=["nan-string", "over-max", "negative-tenure", "tenure-too-high", "float-tenure",
         "unknown-contract-type", "wrong-type", "null", "unknown-field"],
)  # fmt: skip
def test_invalid_field_is_422(
    client: TestClient[Any], change: dict[str, Any], path: str, reason: str
) -> None:
    body = json.dumps({**VALID_RECORD, **change}).encode()
    assert_client_error(raw(client, "/v1/predict", body), 422, path, reason)


@pytest.mark.parametrize("literal", ["1e999", "-1e999"])
def test_a_number_beyond_float_is_422(client: TestClient[Any], literal: str) -> None:
    body = json.dumps(VALID_RECORD).replace("70.5", literal).encode()
    assert_client_error(raw(client, "/v1/predict", body), 422, "$.monthly_charges", "out of range")


def test_missing_field_is_422(client: TestClient[Any]) -> None:
    body = {k: v for k, v in VALID_RECORD.items() if k != "tenure"}
    assert_client_error(
        client.post("/v1/predict", json=body), 422, "$.tenure", "required field is missing"
    )


def test_body_that_is_not_an_object_is_422(client: TestClient[Any]) -> None:
    assert_client_error(
        client.post("/v1/predict", json=[1]), 422, "$", "Expected `object`, got `array`"
    )


def test_batch_errors_name_the_record(client: TestClient[Any]) -> None:
    records = [VALID_RECORD, VALID_RECORD, {**VALID_RECORD, "contract_type": "lifetime"}]
    response = client.post("/v1/predict/batch", json={"records": records})
    assert_client_error(
        response, 422, "$.records[2].contract_type", "Invalid enum value 'lifetime'"
    )


def test_empty_batch_is_422(client: TestClient[Any]) -> None:
    response = client.post("/v1/predict/batch", json={"records": []})
    assert_client_error(response, 422, "$.records", "length >= 1")


def test_oversized_batch_is_422(model_path: Path, model_sha256: str, model: Model) -> None:
    app = create_app(make_settings(model_path, model_sha256, max_batch=3), model=model)
    with TestClient(app=app) as client:
        ok = client.post("/v1/predict/batch", json={"records": [VALID_RECORD] * 3})
        assert ok.status_code == 200
        response = client.post("/v1/predict/batch", json={"records": [VALID_RECORD] * 4})
        assert_client_error(response, 422, "$.records", "length <= 3")


def test_body_over_the_limit_is_413(model_path: Path, model_sha256: str, model: Model) -> None:
    app = create_app(make_settings(model_path, model_sha256, max_body_bytes=4096), model=model)
    with TestClient(app=app) as client:
        body = json.dumps({"records": [VALID_RECORD] * 40}).encode()
        assert len(body) > 4096
        assert_client_error(raw(client, "/v1/predict/batch", body), 413, "$", "body over")

        def chunks() -> Any:  # no content-length: the limit holds on the bytes streamed
            yield body[:3000]
            yield body[3000:]

        response = client.post("/v1/predict/batch", content=chunks(), headers=JSON)
        assert_client_error(response, 413, "$", "body over 4096 bytes")


def test_default_limit_is_eight_mebibytes(client: TestClient[Any]) -> None:
    body = b'{"records": [' + b" " * (8 << 20) + b"]}"
    assert_client_error(raw(client, "/v1/predict/batch", body), 413, "$", "body over 8388608")


def _widest_record(contract: Contract) -> dict[str, Any]:
    """A valid record as long as the contract lets JSON spell it."""
    record: dict[str, Any] = {"customer_id": "c" * CUSTOMER_ID_MAX_LENGTH}
    for name, feature in contract.features.items():
        if feature.type == "category":
            record[name] = max(feature.categories or (), key=len)
        elif feature.type == "bool":
            record[name] = False
        elif feature.type == "int":
            record[name] = int(max(feature.min or 0, feature.max or 0, key=lambda v: len(str(v))))
        else:  # just under the maximum: 17 significant digits
            record[name] = math.nextafter(float(feature.max or 0), float(feature.min or 0))
    return record


def test_a_full_batch_of_the_widest_records_fits_the_default_limits(
    client: TestClient[Any], model: Model
) -> None:
    # At 1 MiB the body limit turned a batch of more than about 2,700 such records into a 413,
    # while CHURN_API_MAX_BATCH allowed 10,000.
    max_batch = client.app.state.service.settings.max_batch
    body = json.dumps({"records": [_widest_record(model.contract)] * max_batch}).encode()
    response = raw(client, "/v1/predict/batch", body)
    assert response.status_code == 200, response.text[:200]
    assert len(response.json()["predictions"]) == max_batch == 10_000


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(client: TestClient[Any], content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = raw(client, "/v1/predict", json.dumps(VALID_RECORD).encode(), headers)
    assert_client_error(response, 415, "$", "content type must be application/json")


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_spelt_otherwise_is_accepted(client: TestClient[Any], content_type: str) -> None:
    headers = {"content-type": content_type}
    assert raw(client, "/v1/predict", json.dumps(VALID_RECORD).encode(), headers).status_code == 200


def test_unknown_route_and_method_are_json(client: TestClient[Any]) -> None:
    assert_client_error(client.get("/v2/predict"), 404, "$", "Not Found")
    assert_client_error(client.get("/v1/predict"), 405, "$", "Method Not Allowed")
    assert_client_error(client.put("/v1/predict/batch"), 405, "$", "Method Not Allowed")
    assert_client_error(client.post("/healthz"), 405, "$", "Method Not Allowed")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", "/v1/predict", "POST"), ("PUT", "/v1/predict/batch", "POST"),
     ("POST", "/healthz", "GET"), ("DELETE", "/metrics", "GET")],
)  # fmt: skip
def test_every_405_names_the_allowed_methods(
    client: TestClient[Any], method: str, path: str, allowed: str
) -> None:
    # RFC 9110 section 15.5.6: a 405 must carry Allow.
    response = client.request(method, path)
    assert response.status_code == 405
    assert allowed in {m.strip() for m in response.headers["allow"].split(",")}


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers()
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)
PARTIAL_RECORDS = st.fixed_dictionaries(
    {}, optional={k: st.just(v) | JSON_VALUES for k, v in VALID_RECORD.items()}
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=JSON_VALUES | PARTIAL_RECORDS | st.builds(lambda r: {"records": [r]}, PARTIAL_RECORDS))
def test_no_json_body_causes_a_5xx(client: TestClient[Any], body: Any) -> None:
    for path in ("/v1/predict", "/v1/predict/batch"):
        response = client.post(path, json=body)
        assert response.status_code < 500, response.text


VALID_RECORDS = st.fixed_dictionaries(
    {
        "tenure": st.integers(0, 120),
        "monthly_charges": st.floats(0.0, 1000.0),
        "contract_type": st.sampled_from(["month-to-month", "one-year", "two-year"]),
        "support_tickets": st.integers(0, 100),
        "internet_service": st.sampled_from(["dsl", "fiber-optic", "none"]),
        "payment_method": st.sampled_from(
            ["electronic-check", "mailed-check", "bank-transfer", "credit-card"]
        ),
        "paperless_billing": st.booleans(),
        "senior_citizen": st.booleans(),
    },
    optional={"customer_id": st.text(min_size=1, max_size=128)},
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(record=VALID_RECORDS)
def test_any_valid_record_is_accepted(client: TestClient[Any], record: dict[str, Any]) -> None:
    response = client.post("/v1/predict", json=record)
    assert response.status_code == 200, response.text
    assert 0.0 <= response.json()["probability"] <= 1.0
    if "customer_id" in record:
        assert response.json()["customer_id"] == record["customer_id"]


def test_not_ready_answers_503(model_path: Path, model_sha256: str) -> None:
    # The pin's digest matches nothing: the model is refused and the app never turns ready.
    app = create_app(make_settings(model_path, "0" * 64))
    with TestClient(app=app) as client:
        unready = wait_loaded(client)
        assert (unready.status_code, unready.headers["content-type"]) == (503, "application/json")
        response = client.post("/v1/predict", json=VALID_RECORD)
        assert_client_error(response, 503, "$", "digest_mismatch")
        assert client.get("/healthz").status_code == 200


class TestApiKeys:
    @pytest.fixture
    def keyed(self, model_path: Path, model_sha256: str, model: Model) -> Any:
        settings = make_settings(model_path, model_sha256, api_keys=frozenset({"k1", "k2"}))
        with TestClient(app=create_app(settings, model=model)) as client:
            yield client

    @pytest.mark.parametrize("headers", [{}, {"X-API-Key": "nope"}, {"X-API-Key": ""}])
    def test_missing_or_unknown_key_is_401(
        self, keyed: TestClient[Any], headers: dict[str, str]
    ) -> None:
        for path in ("/v1/predict", "/v1/predict/batch"):
            response = keyed.post(path, json=VALID_RECORD, headers=headers)
            assert_client_error(response, 401, "$", "X-API-Key")

    def test_a_known_key_passes(self, keyed: TestClient[Any]) -> None:
        for key in ("k1", "k2"):
            assert (
                keyed.post("/v1/predict", json=VALID_RECORD, headers={"X-API-Key": key}).status_code
                == 200
            )

    @pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
    def test_probes_and_metrics_are_exempt(self, keyed: TestClient[Any], path: str) -> None:
        assert keyed.get(path).status_code == 200

    def test_auth_is_off_by_default(self, client: TestClient[Any]) -> None:
        assert client.post("/v1/predict", json=VALID_RECORD).status_code == 200


def test_healthz_and_readyz(client: TestClient[Any]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"ready": True, "model_version": "1", "reason": None}


def test_docs_page_and_schema_are_served(client: TestClient[Any]) -> None:
    assert "swagger-ui" in client.get("/docs").text
    assert client.get("/schema/openapi.json").json()["openapi"].startswith("3.1")


def test_json_answers_carry_their_type_and_length(client: TestClient[Any]) -> None:
    # The routes send their encoded bytes as Litestar's low-level response: the headers
    # Response would have set must still be there, and no others.
    answers = {
        "predict": client.post("/v1/predict", json=VALID_RECORD),
        "batch": client.post("/v1/predict/batch", json={"records": [VALID_RECORD] * 3}),
        "healthz": client.get("/healthz"),
        "readyz": client.get("/readyz"),
        "openapi": client.get("/schema/openapi.json"),
    }
    for name, answer in answers.items():
        assert answer.status_code == 200, name
        assert sorted(answer.headers) == ["content-length", "content-type", "x-request-id"], name
        assert answer.headers["content-type"] == "application/json", name
        assert int(answer.headers["content-length"]) == len(answer.content), name


def _record() -> CustomerFeatures:
    return CustomerFeatures(**VALID_RECORD)
