"""The API's response and error bodies, as msgspec Structs on one strict base.

Request bodies depend on the served model's contract and are built at start
(``churn_api.contract.request_types``); ``PredictRequest`` and
``batch_request_type`` are the default contract's, for tests and fixtures.
The same types decode requests (msgspec's strict JSON decoder: no coercion from
strings, unknown fields rejected, every bound checked) and generate the OpenAPI
schema, so the documented constraints are the enforced ones by construction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

import msgspec

from churn_api.contract import (
    CUSTOMER_ID_MAX_LENGTH,
    CustomerFeatures,
    StrictStruct,
    default_contract,
    request_types,
)

__all__ = [
    "CUSTOMER_ID_MAX_LENGTH",
    "BatchResponse",
    "ErrorDetail",
    "ErrorResponse",
    "HealthResponse",
    "PredictRequest",
    "PredictResponse",
    "ReadinessResponse",
    "batch_request_type",
]

PredictRequest: Final = CustomerFeatures


def batch_request_type(max_batch: int) -> type[StrictStruct]:
    """The default contract's batch body, ``{"records": [...]}``, of 1 to ``max_batch`` records."""
    return request_types(default_contract(), max_batch).batch


class PredictResponse(StrictStruct, frozen=True):
    """The model's answer for one customer."""

    prediction_id: Annotated[
        str, msgspec.Meta(description="Names this prediction, e.g. in POST /v1/feedback.")
    ]
    customer_id: str
    churn: Annotated[bool, msgspec.Meta(description="probability >= the model's threshold")]
    probability: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    model_version: str
    timestamp: Annotated[datetime, msgspec.Meta(tz=True, description="UTC, RFC 3339")]


class BatchResponse(StrictStruct, frozen=True):
    """One prediction per record, in the order of the request."""

    predictions: list[PredictResponse]


class ErrorDetail(StrictStruct, frozen=True):
    """What is wrong and where: ``path`` is a JSON path into the body (``$`` = all of it)."""

    path: str
    reason: str


class ErrorResponse(StrictStruct, frozen=True):
    """Every 4xx and 5xx body."""

    status: int
    error: str
    detail: list[ErrorDetail]


class HealthResponse(StrictStruct, frozen=True):
    """The process is alive."""

    status: str


class ReadinessResponse(StrictStruct, frozen=True):
    """Whether a verified model serves, and which."""

    ready: bool
    model_version: str
    reason: str | None = None
