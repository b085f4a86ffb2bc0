"""Reasons with a score: which features pushed one customer's churn probability up or down.

Asked for per request (``POST /v1/predict?explain=true``). The method depends on
the model:

- ``linear-exact`` (a logistic model, recognised by the linear fast path): the
  logit is exactly ``intercept + sum of contributions``. A number contributes
  ``slope * value``; a category contributes the weight of its value relative to
  the first value the contract lists. Contributions are in log-odds: positive
  ones push the probability up, negative ones down.
- ``not_available``: any other model (trees, interactions). No attribution is
  invented; ``detail`` says why.

At most ``TOP`` features are listed each way, largest effect first.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from churn_api.contract import CustomerRecord, StrictStruct
from churn_api.model import Model
from churn_api.schemas import PredictResponse

__all__ = [
    "TOP",
    "Contribution",
    "ExplainedPrediction",
    "Explanation",
    "explain_prediction",
    "explained",
]

TOP: Final = 3
_NOT_LINEAR: Final = (
    "this model is not linear in its features (e.g. a tree ensemble): exact"
    " contributions cannot be computed, and no approximation is served"
)


class Contribution(StrictStruct, frozen=True):
    """One feature's push on the log-odds of churn."""

    feature: str
    log_odds: Annotated[float, msgspec.Meta(description="> 0 pushes the probability up")]


class Explanation(StrictStruct, frozen=True):
    """Why the score is what it is, or why that cannot be said for this model."""

    method: Literal["linear-exact", "not_available"]
    up: list[Contribution]
    down: list[Contribution]
    intercept: float | None = None
    detail: str | None = None


class ExplainedPrediction(PredictResponse, frozen=True):
    """A prediction with its explanation (``explain=true``)."""

    explanation: Explanation


def explain_prediction(model: Model, record: CustomerRecord) -> Explanation:
    """The top features pushing ``record``'s probability up and down under ``model``."""
    if model.linear is None:
        return Explanation(method="not_available", up=[], down=[], detail=_NOT_LINEAR)
    shares = model.linear.contributions(record)
    ranked = sorted(shares.items(), key=lambda item: abs(item[1]), reverse=True)
    up = [Contribution(name, value) for name, value in ranked if value > 0][:TOP]
    down = [Contribution(name, value) for name, value in ranked if value < 0][:TOP]
    return Explanation(method="linear-exact", up=up, down=down, intercept=model.linear.intercept)


def explained(response: PredictResponse, explanation: Explanation) -> ExplainedPrediction:
    """``response`` with ``explanation`` attached."""
    return ExplainedPrediction(
        prediction_id=response.prediction_id,
        customer_id=response.customer_id,
        churn=response.churn,
        probability=response.probability,
        model_version=response.model_version,
        timestamp=response.timestamp,
        explanation=explanation,
    )
