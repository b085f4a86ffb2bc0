"""churn-outcomes' step: load a file of churn outcomes (CSV or Parquet, S3 or file) into the store.

The way labels really arrive: a monthly file from billing with, per row,
``prediction_id`` or ``customer_id``, ``churned`` and ``observed_at``. Every
row passes the same checks as ``POST /v1/feedback`` (``outcome_from_record``);
one bad row refuses the whole file, naming each bad row, so a half-loaded month
never happens. A good file is stored idempotently (loading it twice records
nothing new) and the report counts each result: recorded, duplicate, conflict,
unknown prediction.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from churn_store.outcomes import (
    OutcomeError,
    OutcomeRecord,
    hashed_outcome,
    outcome_from_record,
)
from churn_store.prediction_store import Outcome, StoreError, open_store

from churn_workflows import EXIT_TRANSIENT, PipelineError, exit_code
from churn_workflows.steps.ingest import read_dataset

__all__ = ["OutcomesReport", "load_outcomes", "main"]

_COLUMNS = ("prediction_id", "customer_id", "churned", "observed_at")
_CHUNK = 5_000


@dataclass
class OutcomesReport:
    """What a load did."""

    source: str
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


def _clean(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "isoformat"):  # a pandas Timestamp from Parquet
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def parse_outcomes(rows: list[dict[str, Any]], source: str, now: datetime) -> list[Outcome]:
    """Each row through the API's checks; raise PipelineError naming every bad row."""
    errors: list[str] = []
    outcomes: list[Outcome] = []
    for number, raw in enumerate(rows, start=2):  # row 1 of a CSV is its header
        row = {k: _clean(v) for k, v in raw.items() if _clean(v) is not None}
        try:
            record = msgspec.convert(row, OutcomeRecord, strict=False)
            outcomes.append(outcome_from_record(record, f"row {number}", now))
        except msgspec.ValidationError as exc:
            errors.append(f"row {number}: {exc}")
        except OutcomeError as exc:
            errors.append(f"{exc.path}: {exc.reason}")
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise PipelineError(f"{source}: {len(errors)} bad row(s), nothing loaded:\n  {shown}{more}")
    return outcomes


def load_outcomes(
    uri: str, store_url: str, *, customer_id_key: bytes | None = None, now: datetime | None = None
) -> OutcomesReport:
    """Validate the whole file, then store it in chunks; return the counts."""
    frame = read_dataset(uri).frame
    unexpected = sorted(set(frame.columns) - set(_COLUMNS))
    if unexpected:
        raise PipelineError(f"{uri}: unexpected column(s) {unexpected}; expected {list(_COLUMNS)}")
    outcomes = parse_outcomes(frame.to_dict("records"), uri, now or datetime.now(UTC))
    if customer_id_key is not None:
        outcomes = [hashed_outcome(o, customer_id_key) for o in outcomes]
    report = OutcomesReport(source=uri, rows=len(outcomes))
    counts: Counter[str] = Counter()
    store = open_store(store_url)
    try:
        store.migrate()
        for start in range(0, len(outcomes), _CHUNK):
            chunk = outcomes[start : start + _CHUNK]
            for (status, _), outcome in zip(
                store.record_outcomes(chunk, f"file:{uri}"), chunk, strict=True
            ):
                counts[status] += 1
                if status == "unknown_prediction" and len(report.unknown) < 20:
                    report.unknown.append(
                        outcome.prediction_id or f"customer {outcome.customer_id}"
                    )
    finally:
        store.close()
    report.counts = dict(sorted(counts.items()))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Load one outcomes file; print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, help="s3://…/outcomes.csv|.parquet or file://")
    parser.add_argument(
        "--store-url",
        default=os.environ.get("CHURN_CAPTURE_URL"),
        help="the prediction store (default: $CHURN_CAPTURE_URL, from a Secret in the cluster)",
    )
    parser.add_argument("--output", type=Path, required=True, help="a folder: outcomes.json")
    args = parser.parse_args(argv)
    if not args.store_url:
        parser.error("--store-url or CHURN_CAPTURE_URL is required")
    key = os.environ.get("CHURN_CAPTURE_CUSTOMER_ID_KEY")
    try:
        report = load_outcomes(
            args.source, args.store_url, customer_id_key=key.encode() if key else None
        )
    except StoreError as exc:
        print(f"outcomes: {exc}", file=sys.stderr)
        return EXIT_TRANSIENT
    except PipelineError as exc:
        print(f"outcomes: {exc}", file=sys.stderr)
        return exit_code(exc)
    args.output.mkdir(parents=True, exist_ok=True)
    text = json.dumps(asdict(report), sort_keys=True)
    (args.output / "outcomes.json").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
