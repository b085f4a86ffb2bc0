"""The OpenAPI 3.1 document and the docs page.

Generated, per served model: the request and response schemas come from
``msgspec.json.schema_components`` over the very Structs that decode and encode
the bodies (the request types built from the model's contract), so every bound,
enum and required field the document states is the one the decoder enforces.
The one rule added by hand is feedback's "exactly one id" (``ONE_ID_SCHEMA``,
kept beside the check it states and tested against it).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

import msgspec
from churn_store.outcomes import ONE_ID_SCHEMA

from churn_api import __version__
from churn_api.contract import RequestTypes
from churn_api.feedback import FeedbackRequest, FeedbackResponse
from churn_api.schemas import (
    BatchResponse,
    ErrorResponse,
    HealthResponse,
    PredictResponse,
    ReadinessResponse,
)

__all__ = ["DOCS_HTML", "openapi_document", "openapi_json"]

_JSON: Final = "application/json"
_SWAGGER_UI: Final = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.17.14"
DOCS_HTML: Final = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>churn-api</title>
<link rel="stylesheet" href="{_SWAGGER_UI}/swagger-ui.css"></head>
<body><div id="ui"></div><script src="{_SWAGGER_UI}/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "/schema/openapi.json", dom_id: "#ui"}});</script></body></html>
"""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _responses(ok: str, *errors: tuple[int, str], ok_status: int = 200) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(ok_status): {"description": "OK", "content": {_JSON: {"schema": _ref(ok)}}},
    }
    for status, description in errors:
        responses[str(status)] = {
            "description": description,
            "content": {_JSON: {"schema": _ref("ErrorResponse")}},
        }
    return responses


_CLIENT_ERRORS: Final = (
    (400, "The body is not JSON."),
    (401, "Missing or unknown X-API-Key (only when keys are configured)."),
    (413, "The body is over the size limit."),
    (415, "The content type is not application/json."),
    (422, "The body does not match the schema; `detail` names the field path and the reason."),
    (503, "No verified model is loaded (starting, refused, or shutting down)."),
)
_FEEDBACK_ERRORS: Final = (
    *(error for error in _CLIENT_ERRORS if error[0] not in {422, 503}),
    (
        422,
        "The body does not match the schema, or a record's `observed_at` is in the future;"
        " `detail` names the path and the reason. Nothing is stored.",
    ),
    (503, "No prediction store is configured, or it cannot be reached."),
)


def openapi_document(types: RequestTypes, *, auth: bool) -> dict[str, Any]:
    """The document for a model whose request types are ``types``."""
    batch_type = types.batch
    (_, components) = msgspec.json.schema_components(
        [
            types.record,
            batch_type,
            PredictResponse,
            BatchResponse,
            ErrorResponse,
            HealthResponse,
            ReadinessResponse,
            FeedbackRequest,
            FeedbackResponse,
        ],
        ref_template="#/components/schemas/{name}",
    )
    components["OutcomeRecord"].update(ONE_ID_SCHEMA)
    security: list[dict[str, list[str]]] = [{"ApiKey": []}] if auth else []

    def predict(summary: str, body: str, ok: str) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "operationId": summary.lower().replace(" ", "_"),
                "security": security,
                "requestBody": {"required": True, "content": {_JSON: {"schema": _ref(body)}}},
                "responses": _responses(ok, *_CLIENT_ERRORS),
            }
        }

    feedback = {
        "post": {
            "summary": "Record outcomes",
            "description": "Ground truth for captured predictions: one result per record, in order."
            " A record names exactly one of `prediction_id` and `customer_id` (that customer's"
            " latest captured prediction made at or before `observed_at`), and `observed_at`"
            " is not in the future.",
            "operationId": "record_outcomes",
            "security": security,
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": _ref("FeedbackRequest")}},
            },
            "responses": _responses("FeedbackResponse", *_FEEDBACK_ERRORS, ok_status=202),
        }
    }

    def probe(summary: str, ok: str, *errors: tuple[int, str]) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "operationId": summary.lower().replace(" ", "_"),
                "security": [],
                "responses": _responses(ok, *errors),
            }
        }

    metrics = {
        "get": {
            "summary": "Prometheus metrics",
            "operationId": "metrics",
            "security": [],
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }
    document_readyz_503 = {
        "description": "Not ready: loading, refused, or shutting down; `reason` says which.",
        "content": {_JSON: {"schema": _ref("ReadinessResponse")}},
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "churn-api",
            "version": __version__,
            "description": "Churn probability for customers, from the ONNX model pinned in Git. "
            f"Request fields: the feature contract {types.contract.name!r} the model embeds.",
        },
        "paths": {
            "/v1/predict": predict("Predict one", "PredictRequest", "PredictResponse"),
            "/v1/predict/batch": predict("Predict batch", batch_type.__name__, "BatchResponse"),
            "/v1/feedback": feedback,
            "/healthz": probe("Liveness", "HealthResponse"),
            "/readyz": probe("Readiness", "ReadinessResponse"),
            "/metrics": metrics,
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }
    document["paths"]["/readyz"]["get"]["responses"]["503"] = document_readyz_503
    return document


@lru_cache(maxsize=8)
def openapi_json(types: RequestTypes, *, auth: bool) -> bytes:
    """The document as JSON bytes, built once per loaded model."""
    return msgspec.json.encode(openapi_document(types, auth=auth))
