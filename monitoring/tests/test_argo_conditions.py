"""The expr-lang subset evaluator against the outcomes Argo Rollouts gives."""

from __future__ import annotations

import math

import pytest
from argo_conditions import ConditionError, evaluate, phase

GUARDED_SUCCESS = "len(result) > 0 && !isNaN(result[0]) && result[0] >= 0.99"
GUARDED_FAILURE = "len(result) > 0 && !isNaN(result[0]) && result[0] < 0.99"


@pytest.mark.parametrize(
    ("condition", "result", "expected"),
    [
        ("result[0] >= 0.95", [0.97], True),
        ("result[0] >= 0.95", [0.9], False),
        ("result[1] < 2", [5.0, 1.0], True),
        ("len(result) == 0", [], True),
        ("isNaN(result[0])", [math.nan], True),
        ("result[0] < 1 || result[0] >= 1", [math.nan], False),
        ("isInf(result[0]) and not isNaN(result[0])", [math.inf], True),
        ("!(result[0] > 1e-3)", [0.0001], True),
        ("len(result) > 0 && result[0] > 1", [], False),
        ("len(result) == 0 || result[0] > 1", [], True),
    ],
)
def test_conditions_evaluate_like_expr_lang(
    condition: str, result: list[float], expected: bool
) -> None:
    assert evaluate(condition, result) is expected


@pytest.mark.parametrize(
    "condition",
    [
        "result[0] > 1",
        "result[0] >",
        "result > 1",
        "len(result)",
        "sum(result) > 1",
        "result[0] ~ 1",
    ],
)
def test_an_error_where_argo_reports_one(condition: str) -> None:
    with pytest.raises(ConditionError):
        evaluate(condition, [])


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ([0.999], "Successful"),
        ([0.95], "Failed"),
        ([math.nan], "Inconclusive"),
        ([], "Inconclusive"),
    ],
)
def test_guarded_conditions_give_the_phase_argo_gives(result: list[float], expected: str) -> None:
    assert phase(GUARDED_SUCCESS, GUARDED_FAILURE, result) == expected


def test_an_unguarded_condition_on_an_empty_result_is_an_error() -> None:
    assert phase("result[0] >= 0.99", "result[0] < 0.99", []) == "Error"


def test_a_success_condition_alone_fails_whatever_is_not_a_success() -> None:
    assert phase("result[0] >= 0.99", "", [math.nan]) == "Failed"
