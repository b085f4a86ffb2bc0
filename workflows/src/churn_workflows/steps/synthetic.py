"""A deterministic, telco-churn-like dataset for the demo, the tests and the benchmark.

Steps: draw every feature of the contract from a plausible distribution, shift
the features named in ``drift`` (the knob that lets tests and the demo produce
drifted data), then draw the label from a logistic function of the features plus
noise. The same seed always gives the same bytes.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from churn_contract import ID_COLUMN, LABEL, builtin_contract, feature_names

from churn_workflows.steps.ingest import write_dataset

__all__ = ["ID_COLUMN", "LABEL", "generate", "main"]

# The generator draws the default contract's features; its raw columns are the canonical ones.
_CONTRACT = builtin_contract()
FEATURES = feature_names(_CONTRACT)


def _categories(name: str) -> list[str]:
    return list(_CONTRACT.features[name].categories or ())


def generate(rows: int, *, seed: int = 7, drift: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Return ``rows`` customers with the contract's columns, ``customer_id`` and ``churn``.

    ``drift`` maps a feature to a strength: numbers move up by that many
    standard deviations (clipped to the contract's range), categories move that
    share of rows to the feature's last category.
    """
    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    rng = np.random.default_rng(seed)
    contract_type = rng.choice(_categories("contract_type"), size=rows, p=[0.55, 0.25, 0.20])
    internet = rng.choice(_categories("internet_service"), size=rows, p=[0.35, 0.45, 0.20])
    payment = rng.choice(_categories("payment_method"), size=rows, p=[0.35, 0.2, 0.22, 0.23])
    tenure = np.clip(rng.gamma(1.6, 18.0, size=rows), 0, 120).round().astype(np.int64)
    base_charge = np.where(internet == "fiber-optic", 85.0, np.where(internet == "dsl", 55.0, 22.0))
    monthly = np.clip(base_charge + rng.normal(0.0, 14.0, size=rows), 0.0, 1000.0).round(2)
    tickets = np.clip(rng.poisson(1.2, size=rows), 0, 100).astype(np.int64)
    paperless = rng.random(rows) < 0.6
    senior = rng.random(rows) < 0.16
    frame = pd.DataFrame(
        {
            "tenure": tenure,
            "monthly_charges": monthly,
            "contract_type": contract_type,
            "support_tickets": tickets,
            "internet_service": internet,
            "payment_method": payment,
            "paperless_billing": paperless,
            "senior_citizen": senior,
        }
    )
    for name, strength in (drift or {}).items():
        _shift(frame, name, strength, rng)
    logit = (
        -1.2
        + 1.3 * (frame["contract_type"] == "month-to-month")
        - 0.9 * (frame["contract_type"] == "two-year")
        - 0.035 * frame["tenure"]
        + 0.018 * (frame["monthly_charges"] - 60.0)
        + 0.35 * frame["support_tickets"]
        + 0.5 * (frame["internet_service"] == "fiber-optic")
        + 0.45 * (frame["payment_method"] == "electronic-check")
        + 0.2 * frame["paperless_billing"]
        + 0.3 * frame["senior_citizen"]
        + rng.normal(0.0, 0.6, size=rows)
    )
    label = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit.to_numpy(dtype=float)))
    frame.insert(0, ID_COLUMN, [f"c-{seed}-{i:08d}" for i in range(rows)])
    frame[LABEL] = label
    return frame[[ID_COLUMN, *FEATURES, LABEL]]


def _shift(frame: pd.DataFrame, name: str, strength: float, rng: np.random.Generator) -> None:
    if name not in _CONTRACT.features:
        raise ValueError(f"drift names {name!r}, which is not a feature of the contract")
    spec = _CONTRACT.features[name]
    kind = spec.type
    if kind == "category":
        moved = rng.random(len(frame)) < strength
        frame.loc[moved, name] = _categories(name)[-1]
    elif kind == "bool":
        moved = rng.random(len(frame)) < strength
        frame.loc[moved, name] = True
    else:
        column = frame[name].astype(float)
        shifted = column + strength * float(column.std() or 1.0)
        shifted = shifted.clip(float(spec.min or 0), float(spec.max or 0))
        frame[name] = shifted.round().astype(np.int64) if kind == "int" else shifted.round(2)


def main(argv: Sequence[str] | None = None) -> int:
    """Write a synthetic dataset to a URI: ``python -m churn_workflows.steps.synthetic``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--drift", action="append", default=[], metavar="FEATURE=STRENGTH", help="repeatable"
    )
    parser.add_argument("--output", required=True, help="file://, s3:// or a path (.csv/.parquet)")
    args = parser.parse_args(argv)
    drift = {k: float(v) for k, v in (item.split("=", 1) for item in args.drift)}
    frame = generate(args.rows, seed=args.seed, drift=drift)
    print(write_dataset(frame, args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
