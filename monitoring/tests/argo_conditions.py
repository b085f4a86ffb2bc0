"""Evaluate AnalysisTemplate conditions the way Argo Rollouts does, for the subset we write.

Argo Rollouts compiles ``successCondition``/``failureCondition`` with expr-lang, with
``result`` bound to the query's vector as a list of float64 and the helpers ``isNaN`` and
``isInf`` (utils/evaluate/evaluate.go). This module implements that subset: numbers,
``result``, ``result[i]``, ``len(x)``, ``isNaN(x)``, ``isInf(x)``, comparisons, ``!``/``not``,
``&&``/``and``, ``||``/``or`` (both short-circuit) and parentheses. Like expr-lang, an index
out of range is an error, and comparisons with NaN are false. Anything else is refused.

``phase`` then combines the two conditions as ``EvaluateResult`` does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

__all__ = ["ConditionError", "evaluate", "phase"]

Env = dict[str, Any]
Node = Callable[[Env], Any]

TOKEN: Final = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<op>&&|\|\||==|!=|<=|>=|[<>!()\[\],]))"
)
COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
FUNCTIONS: Final[dict[str, Callable[[Any], Any]]] = {
    "len": len,
    "isNaN": math.isnan,
    "isInf": math.isinf,
}
WORDS: Final = {"and": "&&", "or": "||", "not": "!"}


class ConditionError(ValueError):
    """The condition does not compile, or fails at run time (Argo: phase Error)."""


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:
            raise ConditionError(f"unexpected {text[position:]!r} in {text!r}")
        token = match.group(match.lastgroup or "op")
        tokens.append(WORDS.get(token, token))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ConditionError(f"expected {expected or 'more'} in {self.text!r}, got {token!r}")
        self.index += 1
        return token

    def parse(self) -> Node:
        node = self.disjunction()
        if self.peek() is not None:
            raise ConditionError(f"unexpected {self.peek()!r} in {self.text!r}")
        return node

    def disjunction(self) -> Node:
        node = self.conjunction()
        while self.peek() == "||":
            self.take()
            left, right = node, self.conjunction()
            node = lambda env, a=left, b=right: _bool(a(env)) or _bool(b(env))  # noqa: E731
        return node

    def conjunction(self) -> Node:
        node = self.comparison()
        while self.peek() == "&&":
            self.take()
            left, right = node, self.comparison()
            node = lambda env, a=left, b=right: _bool(a(env)) and _bool(b(env))  # noqa: E731
        return node

    def comparison(self) -> Node:
        node = self.unary()
        if self.peek() in COMPARE:
            test = COMPARE[self.take()]
            left, right = node, self.unary()
            return lambda env: test(_number(left(env)), _number(right(env)))
        return node

    def unary(self) -> Node:
        if self.peek() == "!":
            self.take()
            inner = self.unary()
            return lambda env: not _bool(inner(env))
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while self.peek() == "[":
            self.take()
            index = self.disjunction()
            self.take("]")
            node = lambda env, n=node, i=index: _index(n(env), i(env))  # noqa: E731
        return node

    def primary(self) -> Node:
        token = self.take()
        if token == "(":
            node = self.disjunction()
            self.take(")")
            return node
        if re.fullmatch(r"\d.*", token):
            value = float(token) if re.search(r"[.eE]", token) else int(token)
            return lambda env: value
        if token in FUNCTIONS:
            function = FUNCTIONS[token]
            self.take("(")
            argument = self.disjunction()
            self.take(")")
            return lambda env: function(argument(env))
        if token == "result":
            return lambda env: env["result"]
        raise ConditionError(f"{token!r} is not in the supported subset ({self.text!r})")


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConditionError(f"expected bool, got {value!r}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConditionError(f"cannot compare {value!r}")
    return float(value)


def _index(sequence: Any, index: Any) -> Any:
    if not isinstance(sequence, list) or not isinstance(index, int):
        raise ConditionError(f"cannot index {sequence!r} with {index!r}")
    if not 0 <= index < len(sequence):
        raise ConditionError(f"index out of range: {index} (array length {len(sequence)})")
    return sequence[index]


def evaluate(condition: str, result: Sequence[float]) -> bool:
    """The condition's value for ``result``; ConditionError where Argo reports an error."""
    value = _Parser(condition).parse()({"result": list(result)})
    if not isinstance(value, bool):
        raise ConditionError(f"expected bool, but got {type(value).__name__}")
    return value


def phase(success: str, failure: str, result: Sequence[float]) -> str:
    """Successful, Failed, Inconclusive or Error, as Argo Rollouts' EvaluateResult decides."""
    try:
        succeeded = evaluate(success, result) if success else False
        failed = evaluate(failure, result) if failure else False
    except ConditionError:
        return "Error"
    if success and not failure:
        failed = not succeeded
    if failure and not success:
        succeeded = not failed
    if not success and not failure:
        return "Successful"
    if failed:
        return "Failed"
    return "Successful" if succeeded else "Inconclusive"
