"""The service's view of the feature contract (``churn_contract``, the ``churn`` file).

The service validates requests with these Structs; a test proves they state
exactly the features, categories and bounds of the default contract file. At
start the service refuses a model whose embedded contract differs from it.

The ONNX graph's inputs mirror the contract: one input per feature, named after
it, shape ``[None, 1]``; ``tensor(string)`` for categorical features and
``tensor(float)`` for the others (booleans as 0.0/1.0). Its output
``probabilities`` is ``[None, 2]``; column 1 is the churn probability.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from churn_contract import (
    CONTRACT_METADATA_KEY,
    LINEAGE_METADATA_KEYS,
    PROBABILITY_OUTPUT,
    Contract,
    builtin_contract,
    contract_json,
)

__all__ = [
    "CATEGORICAL_FEATURES",
    "CONTRACT_METADATA_KEY",
    "FEATURES",
    "LINEAGE_METADATA_KEYS",
    "NUMERIC_FEATURES",
    "PROBABILITY_OUTPUT",
    "ContractType",
    "CustomerFeatures",
    "InternetService",
    "PaymentMethod",
    "StrictStruct",
    "default_contract",
    "feature_contract",
    "feature_contract_json",
    "request_fields",
]

ContractType = Literal["month-to-month", "one-year", "two-year"]
InternetService = Literal["dsl", "fiber-optic", "none"]
PaymentMethod = Literal["electronic-check", "mailed-check", "bank-transfer", "credit-card"]

# Bounds are part of the contract: the API rejects values outside them and the
# data validation step fails a dataset that holds any.
Tenure = Annotated[int, msgspec.Meta(ge=0, le=120, description="Months as a customer.")]
MonthlyCharges = Annotated[
    float, msgspec.Meta(ge=0.0, le=1000.0, description="Current monthly bill in USD.")
]
SupportTickets = Annotated[
    int, msgspec.Meta(ge=0, le=100, description="Support tickets opened in the last 90 days.")
]


class StrictStruct(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The one base of every Struct the service decodes or encodes.

    - ``forbid_unknown_fields``: a misspelled field is an error, not a silent default.
    - ``frozen``: a record is a value; nothing downstream may change it.
    """


class CustomerFeatures(StrictStruct, frozen=True):
    """What the model knows about one customer.

    - strict (``StrictStruct``): unknown fields are rejected, records are immutable.
    - every number is bounded, and floats must be finite (msgspec rejects NaN and
      infinities once a bound is set).
    """

    tenure: Tenure
    monthly_charges: MonthlyCharges
    contract_type: ContractType
    support_tickets: SupportTickets
    internet_service: InternetService
    payment_method: PaymentMethod
    paperless_billing: bool
    senior_citizen: bool


FEATURES: Final[tuple[str, ...]] = CustomerFeatures.__struct_fields__


def default_contract() -> Contract:
    """The contract file these Structs state: ``churn_contract``'s ``churn``."""
    return builtin_contract()


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


def feature_contract() -> dict[str, dict[str, object]]:
    """Describe every feature of ``CustomerFeatures``: type, categories or range."""
    contract: dict[str, dict[str, object]] = {}
    struct_info = msgspec.inspect.type_info(CustomerFeatures)
    assert isinstance(struct_info, msgspec.inspect.StructType)
    for field in struct_info.fields:
        info = field.type
        if isinstance(info, msgspec.inspect.Metadata):  # the description wraps the type
            info = info.type
        spec: dict[str, object]
        if isinstance(info, msgspec.inspect.LiteralType):
            spec = {"type": "category", "categories": list(info.values)}
        elif isinstance(info, msgspec.inspect.BoolType):
            spec = {"type": "bool"}
        elif isinstance(info, msgspec.inspect.IntType | msgspec.inspect.FloatType):
            spec = {
                "type": "int" if isinstance(info, msgspec.inspect.IntType) else "float",
                "min": info.ge,
                "max": info.le,
            }
        else:  # pragma: no cover - guards the contract against an unsupported field type
            raise TypeError(f"feature {field.name!r} has an unsupported type {info!r}")
        contract[field.name] = spec
    return contract


def feature_contract_json() -> str:
    """The default contract as canonical JSON: the exact string stored in the ONNX metadata."""
    return contract_json(default_contract())


CATEGORICAL_FEATURES: Final = tuple(
    name for name, spec in feature_contract().items() if spec["type"] == "category"
)
NUMERIC_FEATURES: Final = tuple(name for name in FEATURES if name not in CATEGORICAL_FEATURES)
