"""The feature contract of a churn model family, as a YAML file.

The pipeline validates and trains from a contract and embeds it in the ONNX
artifact; the service builds its request types and OpenAPI document from the
copy embedded in the model it serves. This package needs msgspec and PyYAML
only, so both sides use it without importing each other.
"""

from churn_contract.spec import (
    BUILTIN_CONTRACTS,
    CONTRACT_METADATA_KEY,
    DEFAULT_CONTRACT,
    ID_COLUMN,
    LABEL,
    LINEAGE_METADATA_KEYS,
    PROBABILITY_OUTPUT,
    Contract,
    ContractChange,
    ContractError,
    Feature,
    Identifier,
    Kind,
    Label,
    builtin_contract,
    categorical_features,
    contract_from_json,
    contract_json,
    diff_contracts,
    example_record,
    feature_names,
    numeric_features,
    parse_contract,
    raw_key,
    value_map,
)

__all__ = [
    "BUILTIN_CONTRACTS",
    "CONTRACT_METADATA_KEY",
    "DEFAULT_CONTRACT",
    "ID_COLUMN",
    "LABEL",
    "LINEAGE_METADATA_KEYS",
    "PROBABILITY_OUTPUT",
    "Contract",
    "ContractChange",
    "ContractError",
    "Feature",
    "Identifier",
    "Kind",
    "Label",
    "builtin_contract",
    "categorical_features",
    "contract_from_json",
    "contract_json",
    "diff_contracts",
    "example_record",
    "feature_names",
    "numeric_features",
    "parse_contract",
    "raw_key",
    "value_map",
]
