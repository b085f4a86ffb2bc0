"""The feature contract: one YAML document that says what a customer record is.

A contract names the raw id column, the raw label column and which of its raw
values mean "churned", and per feature (the name the API and the model use) its
type, its allowed categories or range, a description, where its raw values come
from and how they map in. ``parse_contract`` reads a document and refuses it
with every mistake listed; the result is a frozen ``Contract``.

Raw values are compared as text (``raw_key``): strings stripped, booleans as
``true``/``false``, integral numbers without a decimal point. A blank (empty,
only spaces, or null) becomes the feature's ``impute`` value, or is refused
when the contract declares none.

The canonical JSON (``contract_json``) is what the ONNX artifact carries in its
metadata; the service builds its request types from it, so a contract change
travels with the model.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Final, Literal, get_args

import msgspec
import yaml

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

# The canonical columns every conformed dataset has, whatever its raw names.
ID_COLUMN: Final = "customer_id"
LABEL: Final = "churn"
# The ONNX artifact: the contract and lineage in metadata_props, one probability output.
CONTRACT_METADATA_KEY: Final = "churn.feature_contract"
LINEAGE_METADATA_KEYS: Final = (
    "churn.model_version",
    "churn.mlflow_run_id",
    "churn.data_sha256",
    "churn.git_commit",
    "churn.threshold",
)
PROBABILITY_OUTPUT: Final = "probabilities"
DEFAULT_CONTRACT: Final = "churn"
BUILTIN_CONTRACTS: Final = ("churn", "telco")

Kind = Literal["int", "float", "bool", "category"]
Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Text = Annotated[str, msgspec.Meta(min_length=1)]
RawValues = Annotated[tuple[Text, ...], msgspec.Meta(min_length=1)]
_RESERVED: Final = frozenset({ID_COLUMN, LABEL})
_BOOL_DEFAULTS: Final[Mapping[str, bool]] = {"true": True, "false": False, "1": True, "0": False}


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Unknown keys are mistakes; a contract is a value."""


class Identifier(_Strict, frozen=True, omit_defaults=True):
    """The raw column holding the customer id (unique, never blank)."""

    source: Text


class Label(_Strict, frozen=True):
    """The raw label column and which raw values mean churned or retained."""

    source: Text
    churned: RawValues
    retained: RawValues


class Feature(_Strict, frozen=True, omit_defaults=True):
    """One feature: type, bounds or categories, description and how raw values map in.

    - ``source``: the raw column (default: the feature's own name);
    - ``values``: raw value -> category or boolean (categories: identity when
      absent; booleans: ``true/false/1/0`` when absent);
    - ``impute``: the value a blank becomes; without it a blank is refused.
    """

    type: Kind
    description: Text
    source: Text | None = None
    min: int | float | None = None
    max: int | float | None = None
    categories: tuple[Text, ...] | None = None
    values: dict[str, str | bool] | None = None
    impute: str | bool | int | float | None = None


class Contract(_Strict, frozen=True, omit_defaults=True):
    """A model family's contract: id, label and the features, in the model's input order."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]*$", max_length=63)]
    id: Identifier
    label: Label
    features: Annotated[dict[Name, Feature], msgspec.Meta(min_length=1)]
    description: str = ""


class ContractError(ValueError):
    """A contract document with mistakes; ``problems`` lists each, with its path."""

    def __init__(self, origin: str, problems: list[str]) -> None:
        self.origin = origin
        self.problems = problems
        super().__init__(
            f"contract {origin} is invalid:\n" + "\n".join(f"  - {p}" for p in problems)
        )


def raw_key(value: object) -> str | None:
    """A raw value as the text the contract's mappings use; None for a blank."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    text = str(value).strip()
    return text or None


def value_map(feature: Feature) -> Mapping[str, object] | None:
    """Raw text -> value for a bool or category feature; None means identity."""
    if feature.values is not None:
        return feature.values
    if feature.type == "bool":
        return _BOOL_DEFAULTS
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number_problems(where: str, feature: Feature) -> list[str]:
    problems: list[str] = []
    if feature.min is None or feature.max is None:
        problems.append(f"{where}: a {feature.type} feature needs both min and max")
    elif feature.min > feature.max:
        problems.append(f"{where}: min {feature.min} is above max {feature.max}")
    if feature.type == "int":
        for bound in (feature.min, feature.max):
            if bound is not None and not float(bound).is_integer():
                problems.append(f"{where}: an int feature needs integral bounds, not {bound}")
    if feature.categories is not None or feature.values is not None:
        problems.append(f"{where}: a {feature.type} feature takes no categories or values")
    if feature.impute is not None:
        impute = feature.impute
        if not _is_number(impute):
            problems.append(f"{where}: impute {impute!r} is not a number")
        elif feature.type == "int" and not float(impute).is_integer():
            problems.append(f"{where}: impute {impute!r} is not an integer")
        elif (feature.min is not None and impute < feature.min) or (  # type: ignore[operator]
            feature.max is not None and impute > feature.max  # type: ignore[operator]
        ):
            problems.append(f"{where}: impute {impute!r} is outside [{feature.min}, {feature.max}]")
    return problems


def _feature_problems(name: str, feature: Feature) -> list[str]:
    where = f"features.{name}"
    if name in _RESERVED:
        return [f"{where}: {name!r} is reserved for the id or the label"]
    if feature.type in {"int", "float"}:
        return _number_problems(where, feature)
    problems: list[str] = []
    if feature.min is not None or feature.max is not None:
        problems.append(f"{where}: a {feature.type} feature takes no min or max")
    if feature.type == "bool":
        if feature.categories is not None:
            problems.append(f"{where}: a bool feature takes no categories")
        targets: list[object] = list((feature.values or {}).values())
        if feature.impute is not None:
            targets.append(feature.impute)
        problems += [
            f"{where}: {value!r} is not a boolean (true or false)"
            for value in targets
            if not isinstance(value, bool)
        ]
        return problems
    categories = feature.categories or ()
    if not categories:
        return [*problems, f"{where}: a category feature needs a non-empty categories list"]
    if len(set(categories)) != len(categories):
        problems.append(f"{where}: categories repeat a value")
    targets = list((feature.values or {}).values())
    if feature.impute is not None:
        targets.append(feature.impute)
    problems += [
        f"{where}: {value!r} is not one of its categories {list(categories)}"
        for value in targets
        if value not in categories
    ]
    return problems


def _problems(contract: Contract) -> list[str]:
    problems: list[str] = []
    for name, feature in contract.features.items():
        problems += _feature_problems(name, feature)
    sources = [contract.id.source, contract.label.source]
    sources += [feature.source or name for name, feature in contract.features.items()]
    repeated = sorted({s for s in sources if sources.count(s) > 1})
    if repeated:
        problems.append(f"raw column(s) {repeated} are used more than once")
    both = sorted(set(contract.label.churned) & set(contract.label.retained))
    if both:
        problems.append(f"label: {both} are both churned and retained")
    return problems


_MSGSPEC_PATH = re.compile(r" - at `\$\.?(.*)`$")


def _mistake(exc: msgspec.ValidationError, prefix: str) -> str:
    """msgspec's message, with its path spelled in the file's terms."""
    message = str(exc)
    match = _MSGSPEC_PATH.search(message)
    path = ".".join(p for p in (prefix, match.group(1) if match else "") if p)
    reason = _MSGSPEC_PATH.sub("", message)
    if path.endswith(".type") and reason.startswith("Invalid enum value"):
        reason += f"; a feature's type is one of {', '.join(get_args(Kind))}"
    return f"{path or '(top level)'}: {reason}"


def parse_contract(document: str | bytes, origin: str = "<contract>") -> Contract:
    """Read a YAML (or JSON) contract; raise ContractError listing every mistake."""
    try:
        data = yaml.safe_load(document)
    except yaml.YAMLError as exc:
        raise ContractError(origin, [f"not a YAML document: {exc}"]) from None
    # Each feature on its own first: msgspec names a mapping's key only as `[...]`.
    features = data.get("features") if isinstance(data, dict) else None
    problems: list[str] = []
    for name, spec in (features or {}).items() if isinstance(features, dict) else ():
        try:
            msgspec.convert(spec, Feature)
        except msgspec.ValidationError as exc:
            problems.append(_mistake(exc, f"features.{name}"))
    if problems:
        raise ContractError(origin, problems)
    try:
        contract = msgspec.convert(data, Contract)
    except msgspec.ValidationError as exc:
        raise ContractError(origin, [_mistake(exc, "")]) from None
    problems = _problems(contract)
    if problems:
        raise ContractError(origin, problems)
    return contract


def builtin_contract(name: str = DEFAULT_CONTRACT) -> Contract:
    """A contract shipped with this package: ``churn`` (the default) or ``telco``."""
    if name not in BUILTIN_CONTRACTS:
        raise ContractError(name, [f"no built-in contract {name!r}; there are {BUILTIN_CONTRACTS}"])
    text = resources.files("churn_contract").joinpath(f"contracts/{name}.yaml").read_bytes()
    return parse_contract(text, f"{name}.yaml")


def contract_json(contract: Contract) -> str:
    """Compact JSON, features in the contract's (the model's input) order: the exact string
    stored in the ONNX metadata. The same contract always gives the same string."""
    return msgspec.json.encode(contract).decode()


def _from_legacy(data: Mapping[str, Mapping[str, object]]) -> Contract:
    """A contract from the flat ``{feature: spec}`` JSON of models exported before the file."""
    features: dict[str, object] = {}
    for name, spec in data.items():
        features[name] = {**spec, "description": name.replace("_", " ")}
    return msgspec.convert(
        {
            "name": "churn",
            "id": {"source": ID_COLUMN},
            "label": {"source": LABEL, "churned": ["true"], "retained": ["false"]},
            "features": features,
        },
        Contract,
    )


def contract_from_json(text: str, origin: str = "model metadata") -> Contract:
    """The contract an artifact carries (the flat form of older artifacts too)."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ContractError(origin, ["not JSON"]) from None
    legacy = isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values())
    if legacy and "features" not in data:
        try:
            contract = _from_legacy(data)
        except msgspec.ValidationError as exc:
            raise ContractError(origin, [str(exc)]) from None
        problems = _problems(contract)
        if problems:
            raise ContractError(origin, problems)
        return contract
    return parse_contract(text, origin)


def feature_names(contract: Contract) -> tuple[str, ...]:
    """The features, in the contract's (and the model's input) order."""
    return tuple(contract.features)


def categorical_features(contract: Contract) -> tuple[str, ...]:
    """Features fed to the model as strings (``tensor(string)``)."""
    return tuple(n for n, f in contract.features.items() if f.type == "category")


def numeric_features(contract: Contract) -> tuple[str, ...]:
    """Features fed to the model as float32 (numbers, and booleans as 0/1)."""
    return tuple(n for n, f in contract.features.items() if f.type != "category")


def example_record(contract: Contract) -> dict[str, object]:
    """A valid record: the first category, the lowest bound, false."""
    record: dict[str, object] = {}
    for name, feature in contract.features.items():
        if feature.type == "category":
            record[name] = (feature.categories or ("",))[0]
        elif feature.type == "bool":
            record[name] = False
        elif feature.type == "int":
            record[name] = int(feature.min or 0)
        else:
            record[name] = float(feature.min or 0.0)
    return record


@dataclass(frozen=True)
class ContractChange:
    """One difference in the request a client sends: a field added, removed or changed."""

    feature: str
    change: Literal["added", "removed", "retyped", "narrowed", "widened"]
    before: str
    after: str

    @property
    def breaking(self) -> bool:
        """Whether a request valid before may now be refused (only widening is safe)."""
        return self.change != "widened"


def _describe(feature: Feature | None) -> str:
    if feature is None:
        return "-"
    if feature.type == "category":
        return "category " + " | ".join(feature.categories or ())
    if feature.type == "bool":
        return "bool"
    return f"{feature.type} [{float(feature.min or 0):g}, {float(feature.max or 0):g}]"


def _accepts(feature: Feature) -> tuple[set[str], float, float]:
    return set(feature.categories or ()), float(feature.min or 0), float(feature.max or 0)


def diff_contracts(before: Contract, after: Contract) -> list[ContractChange]:
    """What changed in the request fields between two contracts (descriptions aside)."""
    changes: list[ContractChange] = []
    for name in [*before.features, *(n for n in after.features if n not in before.features)]:
        old, new = before.features.get(name), after.features.get(name)
        kind: Literal["added", "removed", "retyped", "narrowed", "widened"] | None = None
        if old is None:
            kind = "added"
        elif new is None:
            kind = "removed"
        elif old.type != new.type:
            kind = "retyped"
        elif _describe(old) != _describe(new):
            old_set, old_min, old_max = _accepts(old)
            new_set, new_min, new_max = _accepts(new)
            widened = old_set <= new_set and new_min <= old_min and new_max >= old_max
            kind = "widened" if widened else "narrowed"
        if kind is not None:
            changes.append(ContractChange(name, kind, _describe(old), _describe(new)))
    return changes
