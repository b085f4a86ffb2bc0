"""The prediction store the service and the workflows share, and the outcome records it takes.

``churn_store.prediction_store`` holds captured predictions, their outcomes and
the monitor's results in PostgreSQL or SQLite; ``churn_store.outcomes`` is an
outcome record, its checks and the customer-id hash. This package needs
msgspec and psycopg only, so the service and the workflows use it without
importing each other.
"""

from churn_store.outcomes import (
    CLOCK_SKEW,
    OutcomeError,
    OutcomeRecord,
    hash_customer_id,
    hashed_outcome,
    outcome_from_record,
)
from churn_store.prediction_store import (
    MIGRATIONS,
    CapturedPrediction,
    FeedbackStatus,
    JoinedRow,
    MonitorResult,
    Outcome,
    PredictionStore,
    StoreError,
    open_store,
)

__all__ = [
    "CLOCK_SKEW",
    "MIGRATIONS",
    "CapturedPrediction",
    "FeedbackStatus",
    "JoinedRow",
    "MonitorResult",
    "Outcome",
    "OutcomeError",
    "OutcomeRecord",
    "PredictionStore",
    "StoreError",
    "hash_customer_id",
    "hashed_outcome",
    "open_store",
    "outcome_from_record",
]
