"""The API's request and response bodies, as msgspec Structs on one strict base.

The same types decode requests (msgspec's strict JSON decoder: no coercion from
strings, unknown fields rejected, every bound checked) and generate the OpenAPI
schema, so the documented constraints are the enforced ones by construction.
``batch_request_type`` builds the batch body for the configured maximum size.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

import msgspec

from churn_api.contract import CustomerFeatures, StrictStruct

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

CUSTOMER_ID_MAX_LENGTH: Final = 128
CustomerId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=CUSTOMER_ID_MAX_LENGTH,
        description="The caller's id for the customer, echoed back; a UUID when absent.",
    ),
]


class PredictRequest(CustomerFeatures, frozen=True):
    """One customer: the contract's features plus an optional ``customer_id``."""

    customer_id: CustomerId | None = None


def batch_request_type(max_batch: int) -> type[StrictStruct]:
    """The batch body, ``{"records": [...]}``, holding 1 to ``max_batch`` records."""
    records = Annotated[
        list[PredictRequest],
        msgspec.Meta(min_length=1, max_length=max_batch, description="Customers, scored in order."),
    ]
    cls = msgspec.defstruct(
        "BatchRequest",
        [("records", records)],
        bases=(StrictStruct,),
        module=__name__,
    )
    assert issubclass(cls, StrictStruct)
    return cls


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
