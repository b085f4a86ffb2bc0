"""The request types of the model being served, built from the contract it embeds.

The service has no feature list of its own: at start it reads the feature
contract from the pinned model (``churn.feature_contract``, a
``churn_contract.Contract``) and builds its request Structs from it with
``msgspec.defstruct``. So a contract change travels with the model pin, and the
image serves any model family.

Each feature becomes one strict field:

- ``category``: a ``Literal`` of its categories;
- ``bool``: a JSON boolean;
- ``int``: a JSON number with an integral value (``62`` or ``62.0``; JSON Schema
  ``multipleOf: 1``), within its range;
- ``float``: a finite JSON number within its range.

Unknown fields are rejected, strings are never coerced into numbers, and a
failure names the field's path (msgspec's strict decoder). The ONNX graph's
inputs mirror the contract: one input per feature, ``[None, 1]``,
``tensor(string)`` for categories and ``tensor(float)`` for the rest (booleans
as 0/1); its output ``probabilities`` is ``[None, 2]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import msgspec
from churn_contract import (
    CONTRACT_METADATA_KEY,
    LINEAGE_METADATA_KEYS,
    PROBABILITY_OUTPUT,
    Contract,
    Feature,
    builtin_contract,
    categorical_features,
    contract_json,
    example_record,
    feature_names,
    numeric_features,
)

__all__ = [
    "CATEGORICAL_FEATURES",
    "CONTRACT_METADATA_KEY",
    "CUSTOMER_ID_MAX_LENGTH",
    "DEFAULT_MAX_BATCH",
    "FEATURES",
    "LINEAGE_METADATA_KEYS",
    "NUMERIC_FEATURES",
    "PROBABILITY_OUTPUT",
    "CustomerFeatures",
    "CustomerId",
    "CustomerRecord",
    "RequestTypes",
    "StrictStruct",
    "default_contract",
    "feature_contract",
    "feature_contract_json",
    "request_fields",
    "request_types",
]

CUSTOMER_ID_MAX_LENGTH: Final = 128
DEFAULT_MAX_BATCH: Final = 1000
CustomerId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=CUSTOMER_ID_MAX_LENGTH,
        description="The caller's id for the customer, echoed back; a UUID when absent.",
    ),
]


class StrictStruct(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The one base of every Struct the service decodes or encodes.

    - ``forbid_unknown_fields``: a misspelled field is an error, not a silent default.
    - ``frozen``: a record is a value; nothing downstream may change it.
    """


class CustomerRecord(StrictStruct, frozen=True, kw_only=True):
    """One customer in a request: the contract's features (added per model) and an optional id."""

    customer_id: CustomerId | None = None


def _field_type(feature: Feature) -> Any:
    """The strict msgspec type of one feature."""
    about = feature.description
    if feature.type == "category":
        return Annotated[Literal[tuple(feature.categories or ())], msgspec.Meta(description=about)]
    if feature.type == "bool":
        return Annotated[bool, msgspec.Meta(description=about)]
    # Bounds make msgspec refuse NaN and infinities too.
    step = 1 if feature.type == "int" else None
    return Annotated[
        float,
        msgspec.Meta(ge=feature.min, le=feature.max, multiple_of=step, description=about),
    ]


@dataclass(frozen=True, eq=False)
class RequestTypes:
    """A contract's request types and what scoring needs to know of its features.

    Compared and hashed by identity: one per loaded model.
    """

    contract: Contract
    max_batch: int
    record: type[CustomerRecord]
    batch: type[StrictStruct]
    decode_one: msgspec.json.Decoder[Any]
    decode_batch: msgspec.json.Decoder[Any]
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    warm_up: CustomerRecord


def request_types(contract: Contract, max_batch: int = DEFAULT_MAX_BATCH) -> RequestTypes:
    """``PredictRequest`` and ``BatchRequest`` (1 to ``max_batch`` records) of ``contract``."""
    record = msgspec.defstruct(
        "PredictRequest",
        [(name, _field_type(feature)) for name, feature in contract.features.items()],
        bases=(CustomerRecord,),
        module=__name__,
        frozen=True,
        kw_only=True,
    )
    assert issubclass(record, CustomerRecord)
    records = Annotated[
        list[record],  # type: ignore[valid-type]
        msgspec.Meta(min_length=1, max_length=max_batch, description="Customers, scored in order."),
    ]
    batch = msgspec.defstruct(
        "BatchRequest", [("records", records)], bases=(StrictStruct,), module=__name__
    )
    assert issubclass(batch, StrictStruct)
    return RequestTypes(
        contract=contract,
        max_batch=max_batch,
        record=record,
        batch=batch,
        decode_one=msgspec.json.Decoder(record),
        decode_batch=msgspec.json.Decoder(batch),
        features=feature_names(contract),
        categorical=categorical_features(contract),
        numeric=numeric_features(contract),
        warm_up=msgspec.convert(example_record(contract), record),
    )


def request_fields(contract: Contract) -> dict[str, dict[str, object]]:
    """What a client may send per feature: type, categories or range (descriptions aside)."""
    fields: dict[str, dict[str, object]] = {}
    for name, feature in contract.features.items():
        spec: dict[str, object] = {"type": feature.type}
        if feature.type == "category":
            spec["categories"] = sorted(feature.categories or ())
        elif feature.type != "bool":
            spec["min"], spec["max"] = feature.min, feature.max
        fields[name] = spec
    return fields


def default_contract() -> Contract:
    """The built-in ``churn`` contract: the synthetic data's, used by tests and benchmarks."""
    return builtin_contract()


_DEFAULT: Final = request_types(default_contract())
# The default contract's record type and feature names, for tests, benchmarks and fixtures.
CustomerFeatures: Final = _DEFAULT.record
FEATURES: Final = _DEFAULT.features
CATEGORICAL_FEATURES: Final = _DEFAULT.categorical
NUMERIC_FEATURES: Final = _DEFAULT.numeric


def feature_contract() -> dict[str, dict[str, object]]:
    """The default contract's request fields (``request_fields``)."""
    return request_fields(default_contract())


def feature_contract_json() -> str:
    """The default contract as canonical JSON: the exact string stored in the ONNX metadata."""
    return contract_json(default_contract())
