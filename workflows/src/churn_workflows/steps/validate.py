"""Validate: the dataset against the feature contract, and against a reference for drift.

Steps: the columns (missing, unexpected, entirely null), then one pandera
schema built from ``churn_api.contract`` (types, categories, ranges, null rates,
unique ids), duplicate records, label balance, and the population stability
index (PSI) of every feature against a reference dataset. Every violation is
collected, not just the first, into a report kept as JSON and Markdown; any
violation fails the run before training.

pandera because the schema is data built from the contract (one Column per
feature), it reports every failing value with its row in one lazy pass, and it
is fast on a million rows; its failure cases become the report's lines.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import pandera.pandas as pa  # type: ignore[import-untyped,unused-ignore]
from churn_api.contract import FEATURES, feature_contract
from pandera.errors import SchemaErrors  # type: ignore[import-untyped,unused-ignore]

from churn_workflows import PipelineError, exit_code
from churn_workflows.steps.ingest import read_dataset
from churn_workflows.steps.synthetic import ID_COLUMN, LABEL

__all__ = [
    "Thresholds",
    "ValidationReport",
    "build_schema",
    "main",
    "psi",
    "validate",
    "write_report",
]

_CONTRACT = feature_contract()
_PSI_BINS = 10
_PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class Thresholds:
    """What the data may look like: workflow parameters."""

    max_psi: float = 0.2
    max_null_rate: float = 0.0
    min_positive_rate: float = 0.05
    max_positive_rate: float = 0.95


@dataclass
class ValidationReport:
    """The outcome: every violation, PSI per feature, and enough context to read it."""

    source: str
    rows: int
    reference: str | None
    thresholds: Thresholds
    violations: list[str] = field(default_factory=list)
    psi: dict[str, float] = field(default_factory=dict)
    positive_rate: float | None = None

    @property
    def passed(self) -> bool:
        """Whether no check found a violation."""
        return not self.violations

    def summary(self) -> str:
        """One line: the verdict, rows and the largest drift."""
        drift = max(self.psi.items(), key=lambda kv: kv[1], default=("-", 0.0))
        verdict = "passed" if self.passed else f"FAILED ({len(self.violations)} violations)"
        return f"validation {verdict}: {self.rows} rows, max PSI {drift[1]:.3f} ({drift[0]})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["passed"] = self.passed
        return data

    def to_markdown(self) -> str:
        """The report a reviewer reads (also the PR body's validation section)."""
        lines = [
            f"### Data validation: {'passed' if self.passed else 'FAILED'}",
            "",
            f"- source: `{self.source}` ({self.rows} rows)",
            f"- reference: `{self.reference or 'none'}`",
            f"- positive rate: {self._fmt(self.positive_rate)}",
            "",
        ]
        if self.psi:
            lines += ["| feature | PSI | limit |", "|---|---:|---:|"]
            lines += [
                f"| {name} | {value:.4f} | {self.thresholds.max_psi} |"
                for name, value in self.psi.items()
            ]
            lines.append("")
        lines += ["Violations:" if self.violations else "No violations.", ""]
        lines += [f"- {v}" for v in self.violations]
        return "\n".join(lines).rstrip() + "\n"

    @staticmethod
    def _fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"


def build_schema(thresholds: Thresholds) -> pa.DataFrameSchema:
    """One pandera schema from the feature contract (null rates are checked beside it)."""
    columns: dict[str, pa.Column] = {
        ID_COLUMN: pa.Column(str, nullable=False, unique=True),
        LABEL: pa.Column(bool, nullable=False),
    }
    for name, spec in _CONTRACT.items():
        checks: list[pa.Check] = []
        kind = spec["type"]
        if kind == "category":
            checks.append(pa.Check.isin([str(v) for v in spec["categories"]]))  # type: ignore[attr-defined]
            dtype: Any = str
        elif kind == "bool":
            dtype = bool
        else:
            checks.append(pa.Check.in_range(spec["min"], spec["max"]))
            dtype = "Int64" if kind == "int" else float
        columns[name] = pa.Column(dtype, checks=checks, nullable=True, coerce=kind == "float")
    return pa.DataFrameSchema(columns, strict=True, ordered=False)


def _schema_violations(frame: pd.DataFrame, source: str, thresholds: Thresholds) -> list[str]:
    schema = build_schema(thresholds)
    # int columns with nulls arrive as float; check them as nullable ints.
    frame = frame.copy()
    for name, spec in _CONTRACT.items():
        if spec["type"] == "int" and pd.api.types.is_numeric_dtype(frame[name]):
            values = frame[name]
            if values.isna().any() and (values.dropna() % 1 == 0).all():
                frame[name] = values.astype("Int64")
        if spec["type"] == "int" and pd.api.types.is_integer_dtype(frame[name]):
            frame[name] = frame[name].astype("Int64")
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        return _summarise(exc.failure_cases, source)
    return []


def _summarise(cases: pd.DataFrame, source: str) -> list[str]:
    out = []
    for (column, check), group in cases.groupby(["column", "check"], sort=True, dropna=False):
        rows = [int(i) for i in group["index"].dropna().tolist()[:5]]
        values = [str(v) for v in group["failure_case"].tolist()[:3]]
        where = f" (rows {', '.join(map(str, rows))}{', ...' if len(group) > 5 else ''})"
        out.append(
            f"{source}: column {column!r} fails {check}: {len(group)} value(s) "
            f"such as {', '.join(values)}{where if rows else ''}"
        )
    return out


def psi(current: pd.Series[Any], reference: pd.Series[Any], kind: str) -> float:
    """Population stability index of ``current`` against ``reference``."""
    cur = current.dropna()
    ref = reference.dropna()
    if cur.empty or ref.empty:
        return math.inf
    if kind in {"category", "bool"}:
        levels = sorted(set(ref.astype(str)) | set(cur.astype(str)))
        ref_share = ref.astype(str).value_counts(normalize=True).reindex(levels, fill_value=0.0)
        cur_share = cur.astype(str).value_counts(normalize=True).reindex(levels, fill_value=0.0)
        expected, actual = ref_share.to_numpy(), cur_share.to_numpy()
    else:
        edges = np.unique(np.quantile(ref.to_numpy(dtype=float), np.linspace(0, 1, _PSI_BINS + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        expected = np.histogram(ref.to_numpy(dtype=float), edges)[0] / len(ref)
        actual = np.histogram(cur.to_numpy(dtype=float), edges)[0] / len(cur)
    expected = np.clip(expected, _PSI_EPSILON, None)
    actual = np.clip(actual, _PSI_EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _drift(
    report: ValidationReport, frame: pd.DataFrame, reference: pd.DataFrame, *, skip: list[str]
) -> None:
    limit = report.thresholds.max_psi
    for name in FEATURES:
        if name in skip or name not in reference.columns:
            continue
        value = psi(frame[name], reference[name], str(_CONTRACT[name]["type"]))
        report.psi[name] = round(value, 6)
        if value > limit:
            report.violations.append(
                f"{report.source}: feature {name!r} drifted from "
                f"{report.reference or 'reference'}: PSI {value:.3f} > {limit}"
            )


def validate(
    frame: pd.DataFrame,
    *,
    source: str,
    reference: pd.DataFrame | None = None,
    reference_source: str | None = None,
    thresholds: Thresholds | None = None,
) -> ValidationReport:
    """Run every check on ``frame``; the report lists each violation, naming column and rows."""
    limits = thresholds or Thresholds()
    report = ValidationReport(
        source=source, rows=len(frame), reference=reference_source, thresholds=limits
    )
    expected = [ID_COLUMN, *FEATURES, LABEL]
    missing = [c for c in expected if c not in frame.columns]
    unexpected = [c for c in frame.columns if c not in expected]
    if missing:
        report.violations.append(f"{source}: missing column(s) {', '.join(missing)}")
    if unexpected:
        report.violations.append(
            f"{source}: unexpected column(s) {', '.join(map(str, unexpected))}"
        )
    if missing or unexpected:
        return report
    if frame.empty:
        report.violations.append(f"{source}: no rows")
        return report
    all_null = [c for c in expected if frame[c].isna().all()]
    for column in all_null:
        report.violations.append(f"{source}: column {column!r} is entirely null")
    for column in [c for c in FEATURES if c not in all_null]:
        nulls = frame[column].isna()
        if nulls.mean() > limits.max_null_rate:
            rows = ", ".join(str(i) for i in frame.index[nulls][:5])
            report.violations.append(
                f"{source}: column {column!r} null rate {nulls.mean():.4f} above "
                f"{limits.max_null_rate} ({int(nulls.sum())} rows, such as rows {rows})"
            )
    # Duplicate records show up as repeated customer ids (the schema's unique check).
    report.violations += [
        v
        for v in _schema_violations(frame, source, limits)
        if not any(f"column {c!r}" in v for c in all_null)
    ]
    if LABEL not in all_null:
        positive = float(frame[LABEL].astype("boolean").mean())
        report.positive_rate = positive
        if not limits.min_positive_rate <= positive <= limits.max_positive_rate:
            report.violations.append(
                f"{source}: label {LABEL!r} positive rate {positive:.3f} outside "
                f"[{limits.min_positive_rate}, {limits.max_positive_rate}]"
            )
    if reference is not None:
        _drift(report, frame, reference, skip=all_null)
    return report


def write_report(report: ValidationReport, directory: Path) -> tuple[Path, Path]:
    """Write ``validation.json`` and ``validation.md`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    as_json = directory / "validation.json"
    as_md = directory / "validation.md"
    as_json.write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    as_md.write_text(report.to_markdown())
    return as_json, as_md


def main(argv: Sequence[str] | None = None) -> int:
    """Validate a dataset; exit 1 on any violation (Argo's validate)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--reference", help="a dataset to measure drift against")
    parser.add_argument("--max-psi", type=float, default=Thresholds.max_psi)
    parser.add_argument("--max-null-rate", type=float, default=Thresholds.max_null_rate)
    parser.add_argument("--report-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        data = read_dataset(args.data)
        reference = read_dataset(args.reference) if args.reference else None
    except PipelineError as exc:
        print(f"validate: {exc}", file=sys.stderr)
        return exit_code(exc)
    report = validate(
        data.frame,
        source=args.data,
        reference=reference.frame if reference else None,
        reference_source=args.reference,
        thresholds=Thresholds(max_psi=args.max_psi, max_null_rate=args.max_null_rate),
    )
    write_report(report, args.report_dir)
    print(report.to_markdown())
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
