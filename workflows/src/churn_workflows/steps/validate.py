"""Validate: a raw dataset against its feature contract, and against a reference for drift.

Steps: conform the raw table to the contract (``conform``): the columns the
contract names (missing, unexpected; a one-column header says which delimiter
it holds), unique non-blank ids, the label's raw values (churned, retained, or
a third value), and per feature its raw values mapped in (unmapped categories,
numbers that are not numbers, blanks without a declared imputation). Then one
pandera schema built from the contract checks the conformed table (types,
categories, ranges, unique ids), the label balance is bounded, and the
population stability index (PSI) of every feature is measured against a
reference. Every violation names the column, the reason and how many rows, and
all are collected into one report kept as JSON and Markdown; any violation fails
the run before training. The conformed table (canonical column names
``customer_id``, the features, ``churn``) is what training reads.

pandera because the schema is data built from the contract (one Column per
feature), it reports every failing value with its row in one lazy pass, and it
is fast on a million rows; its failure cases become the report's lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import pandera.pandas as pa  # type: ignore[import-untyped,unused-ignore]
from churn_contract import (
    ID_COLUMN,
    LABEL,
    Contract,
    Feature,
    builtin_contract,
    feature_names,
    raw_key,
    value_map,
)
from pandera.errors import SchemaErrors  # type: ignore[import-untyped,unused-ignore]

from churn_workflows import PipelineError, exit_code
from churn_workflows.contracts import load_contract
from churn_workflows.steps.ingest import read_dataset, write_dataset
from churn_workflows.storage import exists

__all__ = [
    "Thresholds",
    "ValidationReport",
    "build_schema",
    "conform",
    "main",
    "psi",
    "validate",
    "write_report",
]

_PSI_BINS = 10
_PSI_EPSILON = 1e-4
_EXAMPLES = 3
_DELIMITERS = (";", "\t", "|")


@dataclass(frozen=True)
class Thresholds:
    """What the data may look like: workflow parameters."""

    max_psi: float = 0.2
    min_positive_rate: float = 0.05
    max_positive_rate: float = 0.95
    # "refuse": drift above max_psi fails the run; "report": it is reported, the run goes on
    # (a retrain that drift itself started). Broken data refuses either way.
    drift: str = "refuse"


@dataclass
class ValidationReport:
    """The outcome: every violation, PSI per feature, and enough context to read it.

    ``conformed`` is the table in the contract's canonical columns (None on failure).
    """

    source: str
    rows: int
    reference: str | None
    thresholds: Thresholds
    contract: str = ""
    violations: list[str] = field(default_factory=list)
    psi: dict[str, float] = field(default_factory=dict)
    positive_rate: float | None = None
    conformed: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    drift_reported: list[str] = field(default_factory=list)

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
        data = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "conformed"
        }
        data["thresholds"] = dataclasses.asdict(self.thresholds)
        data["passed"] = self.passed
        return data

    def to_markdown(self) -> str:
        """The report a reviewer reads (also the PR body's validation section)."""
        lines = [
            f"### Data validation: {'passed' if self.passed else 'FAILED'}",
            "",
            f"- source: `{self.source}` ({self.rows} rows)",
            f"- contract: `{self.contract or 'none'}`",
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
        if self.drift_reported:
            lines += ["Drift (reported, not refused: the reason for this run):", ""]
            lines += [f"- {d}" for d in self.drift_reported] + [""]
        lines += ["Violations:" if self.violations else "No violations.", ""]
        lines += [f"- {v}" for v in self.violations]
        return "\n".join(lines).rstrip() + "\n"

    @staticmethod
    def _fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"


def _rows(mask: pd.Series[bool]) -> str:
    """``N row(s), such as rows 3, 7``: the count and the first few row numbers (0-based)."""
    index = mask[mask].index[:_EXAMPLES]
    more = ", ..." if int(mask.sum()) > _EXAMPLES else ""
    return f"{int(mask.sum())} row(s), such as rows {', '.join(map(str, index))}{more}"


def _values(raw: pd.Series[Any], mask: pd.Series[bool]) -> str:
    counts = raw[mask].astype(str).value_counts()
    shown = [f"{value!r} ({count})" for value, count in counts.head(_EXAMPLES).items()]
    return ", ".join(shown) + (", ..." if len(counts) > _EXAMPLES else "")


def _column_violations(frame: pd.DataFrame, contract: Contract, source: str) -> list[str]:
    expected = [
        contract.id.source,
        *(f.source or name for name, f in contract.features.items()),
        contract.label.source,
    ]
    missing = [c for c in expected if c not in frame.columns]
    unexpected = [str(c) for c in frame.columns if c not in expected]
    out: list[str] = []
    if len(frame.columns) == 1 and len(expected) > 1:
        header = str(frame.columns[0])
        held = [d for d in _DELIMITERS if d in header]
        if held:
            return [
                f"{source}: the header is one column {header[:60]!r} holding {held[0]!r}: "
                f"the file is not comma-separated ({len(frame)} rows); the contract "
                f"{contract.name!r} needs {len(expected)} comma-separated columns"
            ]
    if missing:
        out.append(f"{source}: missing column(s) {', '.join(missing)}")
    if unexpected:
        out.append(f"{source}: unexpected column(s) {', '.join(unexpected)}")
    return out


def _blank(raw: pd.Series[Any]) -> tuple[pd.Series[Any], pd.Series[bool]]:
    """The raw column with blanks (null, empty, only spaces) as NA, and the blank mask."""
    if raw.dtype == object or pd.api.types.is_string_dtype(raw):
        stripped = raw.astype("string").str.strip()
        raw = raw.mask(stripped.eq("").fillna(False))
    return raw, raw.isna()


def _conform_feature(
    raw: pd.Series[Any], name: str, feature: Feature, where: str
) -> tuple[pd.Series[Any] | None, list[str]]:
    raw, blank = _blank(raw)
    problems: list[str] = []
    if blank.any() and feature.impute is None:
        problems.append(
            f"{where}: blank in {_rows(blank)}, and the contract declares no impute for {name!r}"
        )
    if feature.type in {"int", "float"}:
        numbers = pd.to_numeric(raw, errors="coerce").astype(float)
        bad = numbers.isna() & ~blank
        if bad.any():
            problems.append(f"{where}: not a number in {_rows(bad)}: {_values(raw, bad)}")
        numbers = numbers.where(~blank, float(feature.impute or 0))
        if feature.type == "int":
            fractional = (numbers % 1 != 0) & ~bad
            if fractional.any():
                problems.append(f"{where}: not an integer in {_rows(fractional)}")
        outside = ~numbers.between(feature.min, feature.max) & ~bad
        if outside.any():
            problems.append(
                f"{where}: outside [{feature.min}, {feature.max}] in {_rows(outside)}: "
                f"{_values(raw, outside)}"
            )
        if problems:
            return None, problems
        return numbers.astype(np.int64) if feature.type == "int" else numbers, []
    keys = raw.map(raw_key, na_action="ignore")
    mapping = value_map(feature)
    values = keys if mapping is None else keys.map(mapping.get, na_action="ignore")
    if feature.type == "category":
        allowed = set(feature.categories or ())
        unmapped = ~blank & ~values.isin(allowed)
        known = sorted(mapping) if mapping is not None else sorted(allowed)
    else:
        unmapped = ~blank & values.isna()
        known = sorted(mapping or {})
    if unmapped.any():
        problems.append(
            f"{where}: unmapped value(s) {_values(raw, unmapped)} in {_rows(unmapped)}; "
            f"the contract maps {known}"
        )
    if problems:
        return None, problems
    values = values.where(~blank, feature.impute)
    return (values.astype(bool) if feature.type == "bool" else values.astype(str)), []


def conform(
    frame: pd.DataFrame, contract: Contract, source: str
) -> tuple[pd.DataFrame | None, list[str]]:
    """The raw ``frame`` in the contract's canonical columns, or None and every violation."""
    if frame.empty:
        return None, [f"{source}: no rows (the contract {contract.name!r} needs data)"]
    violations = _column_violations(frame, contract, source)
    if violations:
        return None, violations
    out = pd.DataFrame(index=frame.index)
    ids, blank = _blank(frame[contract.id.source])
    where = f"{source}: column {contract.id.source!r} (id)"
    if blank.any():
        violations.append(f"{where}: blank in {_rows(blank)}")
    ids = ids.astype("string").str.strip()
    repeated = ids.duplicated(keep=False) & ~blank
    if repeated.any():
        violations.append(f"{where}: duplicate ids in {_rows(repeated)}: {_values(ids, repeated)}")
    out[ID_COLUMN] = ids.astype(str).to_numpy(dtype=object)
    for name, feature in contract.features.items():
        column = feature.source or name
        where = f"{source}: column {column!r}" + ("" if column == name else f" ({name})")
        values, problems = _conform_feature(frame[column], name, feature, where)
        violations += problems
        if values is not None:
            out[name] = values
    label = contract.label
    keys = frame[label.source].map(raw_key, na_action="ignore")
    churned = keys.isin(label.churned)
    third = ~churned & ~keys.isin(label.retained)
    if third.any():
        violations.append(
            f"{source}: column {label.source!r} (label): value(s) "
            f"{_values(frame[label.source], third)} in {_rows(third)} are neither "
            f"churned {list(label.churned)} nor retained {list(label.retained)}"
        )
    out[LABEL] = churned.to_numpy(dtype=bool)
    return (None, violations) if violations else (out, [])


def build_schema(contract: Contract | None = None) -> pa.DataFrameSchema:
    """One pandera schema of the conformed table, from the feature contract."""
    contract = contract or builtin_contract()
    columns: dict[str, pa.Column] = {
        ID_COLUMN: pa.Column(str, nullable=False, unique=True),
        LABEL: pa.Column(bool, nullable=False),
    }
    for name, feature in contract.features.items():
        checks: list[pa.Check] = []
        dtype: Any
        if feature.type == "category":
            checks.append(pa.Check.isin(list(feature.categories or ())))
            dtype = str
        elif feature.type == "bool":
            dtype = bool
        else:
            checks.append(pa.Check.in_range(feature.min, feature.max))
            dtype = "int64" if feature.type == "int" else float
        columns[name] = pa.Column(dtype, checks=checks, nullable=False)
    return pa.DataFrameSchema(columns, strict=True, ordered=False)


def _schema_violations(frame: pd.DataFrame, source: str, contract: Contract) -> list[str]:
    try:
        build_schema(contract).validate(frame, lazy=True)
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
    report: ValidationReport, frame: pd.DataFrame, reference: pd.DataFrame, contract: Contract
) -> None:
    limit = report.thresholds.max_psi
    for name in feature_names(contract):
        if name not in reference.columns:
            continue
        value = psi(frame[name], reference[name], contract.features[name].type)
        report.psi[name] = round(value, 6)
        if value > limit:
            found = (
                report.violations if report.thresholds.drift != "report" else report.drift_reported
            )
            found.append(
                f"{report.source}: feature {name!r} drifted from "
                f"{report.reference or 'reference'}: PSI {value:.3f} > {limit}"
            )


def validate(
    frame: pd.DataFrame,
    *,
    source: str,
    contract: Contract | None = None,
    reference: pd.DataFrame | None = None,
    reference_source: str | None = None,
    thresholds: Thresholds | None = None,
) -> ValidationReport:
    """Run every check on the raw ``frame``; each violation names column, reason and rows.

    ``reference`` is raw too, conformed by the same contract. On success the
    report's ``conformed`` holds the canonical table training reads.
    """
    contract = contract or builtin_contract()
    limits = thresholds or Thresholds()
    report = ValidationReport(
        source=source,
        rows=len(frame),
        reference=reference_source,
        thresholds=limits,
        contract=contract.name,
    )
    conformed, report.violations = conform(frame, contract, source)
    if conformed is None:
        return report
    report.violations += _schema_violations(conformed, source, contract)
    positive = float(conformed[LABEL].mean())
    report.positive_rate = positive
    if not limits.min_positive_rate <= positive <= limits.max_positive_rate:
        report.violations.append(
            f"{source}: label {contract.label.source!r} positive rate {positive:.3f} outside "
            f"[{limits.min_positive_rate}, {limits.max_positive_rate}] ({len(conformed)} rows)"
        )
    if reference is not None:
        where = reference_source or "reference"
        conformed_reference, problems = conform(reference, contract, where)
        report.violations += problems
        if conformed_reference is not None:
            _drift(report, conformed, conformed_reference, contract)
    if report.passed:
        report.conformed = conformed
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
    """Validate a raw dataset, write the conformed one; exit 1 on a violation (Argo's validate)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--contract", default="churn", help="a built-in name or a URI (.yaml)")
    parser.add_argument("--reference", help="a dataset to measure drift against")
    parser.add_argument("--max-psi", type=float, default=Thresholds.max_psi)
    parser.add_argument("--drift", choices=("refuse", "report"), default="refuse")
    parser.add_argument("--report-dir", type=Path, required=True)
    parser.add_argument("--output", help="where the conformed dataset goes (.parquet)")
    args = parser.parse_args(argv)
    try:
        contract = load_contract(args.contract)
        data = read_dataset(args.data)
        if args.reference and not exists(args.reference):
            # A fresh environment has no reference yet: the first run checks everything else.
            print(f"validate: no reference at {args.reference} (first run): drift not measured")
            args.reference = None
        reference = read_dataset(args.reference) if args.reference else None
    except PipelineError as exc:
        print(f"validate: {exc}", file=sys.stderr)
        return exit_code(exc)
    report = validate(
        data.frame,
        source=args.data,
        contract=contract,
        reference=reference.frame if reference else None,
        reference_source=args.reference,
        thresholds=Thresholds(max_psi=args.max_psi, drift=args.drift),
    )
    write_report(report, args.report_dir)
    print(report.to_markdown())
    if report.conformed is not None and args.output:
        write_dataset(report.conformed, args.output)
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
