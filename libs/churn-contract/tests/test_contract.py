"""The contract format: the built-in files load, every mistake is named, the schema is in sync."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from churn_contract import (
    BUILTIN_CONTRACTS,
    ContractError,
    builtin_contract,
    contract_from_json,
    contract_json,
    diff_contracts,
    example_record,
    parse_contract,
    raw_key,
)
from churn_contract.schema import SCHEMA_PATH, render

GOOD = """
name: small
id: {source: id}
label: {source: left, churned: ["Yes"], retained: ["No"]}
features:
  tenure: {type: int, min: 0, max: 120, description: Months.}
  plan: {type: category, categories: [basic, pro], values: {"Basic": basic, "Pro": pro},
         description: Plan.}
  paperless: {type: bool, values: {"Yes": true, "No": false}, description: Paperless.}
  charges: {type: float, min: 0, max: 10, impute: 0.0, description: Charges.}
"""


def test_builtin_contracts_load_and_round_trip_through_json() -> None:
    for name in BUILTIN_CONTRACTS:
        contract = builtin_contract(name)
        assert contract_from_json(contract_json(contract)) == contract
    assert "support_tickets" in builtin_contract().features
    assert len(builtin_contract("telco").features) == 19


def test_a_good_document_parses() -> None:
    contract = parse_contract(GOOD, "good.yaml")
    assert contract.features["charges"].impute == 0.0
    assert set(example_record(contract)) == {"tenure", "plan", "paperless", "charges"}


def _edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("[1, 2]", "(top level): Expected `object`, got `array`"),
        ("name: [", "not a YAML document"),
        (_edit("name: small", "name: Small!"), "name: Expected `str` matching regex"),
        (_edit("id: {source: id}", ""), "Object missing required field `id`"),
        (
            _edit("{type: int,", "{type: integer,"),
            "features.tenure.type: Invalid enum value 'integer'; a feature's type is one of int",
        ),
        (_edit("min: 0, max: 120,", "min: 0, max: 120, colour: red,"), "unknown field `colour`"),
        (_edit('churned: ["Yes"]', "churned: [Yes]"), "label.churned[0]: Expected `str`, got"),
        (_edit("min: 0, max: 120", "min: 130, max: 120"), "features.tenure: min 130 is above"),
        (_edit("min: 0, max: 120", "max: 120"), "features.tenure: a int feature needs both"),
        (_edit("min: 0, max: 120", "min: 0.5, max: 120"), "needs integral bounds"),
        (_edit("categories: [basic, pro]", "categories: []"), "needs a non-empty categories"),
        (_edit('"Pro": pro', '"Pro": premium'), "'premium' is not one of its categories"),
        (_edit('"No": false}', '"No": "no"}'), "features.paperless: 'no' is not a boolean"),
        (_edit("impute: 0.0", "impute: 11"), "impute 11 is outside [0, 10]"),
        (_edit("impute: 0.0", "impute: none"), "impute 'none' is not a number"),
        (_edit("tenure: {", "churn: {"), "'churn' is reserved"),
        (_edit("tenure: {", "Tenure: {"), "Expected `str` matching regex"),
        (_edit("paperless: {", "paperless: {source: id, "), "raw column(s) ['id'] are used"),
        (_edit('retained: ["No"]', 'retained: ["Yes"]'), "['Yes'] are both churned and retained"),
        (_edit("{type: int, min: 0, max: 120,", "{type: bool, min: 0,"), "takes no min or max"),
    ],
)
def test_every_mistake_is_named_with_its_path(document: str, expected: str) -> None:
    with pytest.raises(ContractError) as caught:
        parse_contract(document, "broken.yaml")
    assert "contract broken.yaml is invalid" in str(caught.value)
    assert expected in str(caught.value)


def test_all_semantic_mistakes_are_listed_at_once() -> None:
    document = _edit("min: 0, max: 120", "min: 130, max: 120").replace("impute: 0.0", "impute: 11")
    with pytest.raises(ContractError) as caught:
        parse_contract(document, "broken.yaml")
    assert len(caught.value.problems) == 2


def test_an_unknown_builtin_is_refused() -> None:
    with pytest.raises(ContractError, match="no built-in contract 'nope'"):
        builtin_contract("nope")


def test_raw_keys_compare_raw_values_as_text() -> None:
    assert [raw_key(v) for v in (True, False, 1, 1.0, 2.5, " Yes ", "", "  ", None)] == [
        "true",
        "false",
        "1",
        "1",
        "2.5",
        "Yes",
        None,
        None,
        None,
    ]
    assert raw_key(float("nan")) is None


def test_the_flat_contract_of_older_artifacts_still_reads() -> None:
    legacy = {"tenure": {"type": "int", "min": 0, "max": 120}, "vip": {"type": "bool"}}
    contract = contract_from_json(json.dumps(legacy))
    assert contract.features["tenure"].max == 120
    with pytest.raises(ContractError, match="not JSON"):
        contract_from_json("{")
    with pytest.raises(ContractError, match="Object missing required field"):
        contract_from_json('{"name": "x"}')


def test_diff_names_added_removed_retyped_and_narrowed_fields() -> None:
    before = parse_contract(GOOD)
    after = parse_contract(
        _edit("tenure: {type: int, min: 0, max: 120", "tenure: {type: int, min: 0, max: 60")
        .replace("paperless: {type: bool,", "paperless: {type: category, categories: [y, n],")
        .replace('values: {"Yes": true, "No": false}', 'values: {"Yes": y, "No": n}')
        .replace("  charges:", "  seats: {type: int, min: 1, max: 9, description: Seats.}\n  x:")
    )
    changes = {c.feature: c.change for c in diff_contracts(before, after)}
    assert changes == {
        "tenure": "narrowed",
        "paperless": "retyped",
        "charges": "removed",
        "seats": "added",
        "x": "added",
    }
    widened = parse_contract(_edit("max: 120", "max: 240"))
    (change,) = diff_contracts(before, widened)
    assert (change.change, change.breaking) == ("widened", False)
    assert diff_contracts(before, before) == []


def test_the_committed_json_schema_is_the_rendered_one() -> None:
    assert SCHEMA_PATH.read_text() == render(), "run `make render`"


def test_the_json_schema_accepts_the_builtin_files_and_refuses_unknown_keys() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    for name in BUILTIN_CONTRACTS:
        path = SCHEMA_PATH.parent / "src" / "churn_contract" / "contracts" / f"{name}.yaml"
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**yaml.safe_load(GOOD), "colour": "red"}, schema)
