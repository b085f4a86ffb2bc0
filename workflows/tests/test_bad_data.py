"""Bad data in a contract's raw format: one report naming column, reason and rows; nothing after.

Each case is a small Telco-shaped CSV run through the whole in-process
pipeline with a contract file: the run must stop at ingest or validate with
exactly one violation, register no model version and write no promotion branch.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from churn_contract import parse_contract
from churn_workflows import PipelineError
from churn_workflows.contracts import load_contract
from churn_workflows.pipeline import PipelineConfig, run_pipeline
from churn_workflows.steps.promote import git
from churn_workflows.steps.validate import validate

CONTRACT = """
name: small-telco
id: {source: customerID}
label: {source: Churn, churned: ["Yes"], retained: ["No"]}
features:
  tenure: {type: int, min: 0, max: 120, description: Months as a customer.}
  contract_type:
    source: Contract
    type: category
    categories: [month-to-month, one-year, two-year]
    values: {"Month-to-month": month-to-month, "One year": one-year, "Two year": two-year}
    description: The contract term.
  paperless_billing:
    source: PaperlessBilling
    type: bool
    values: {"Yes": true, "No": false}
    description: Paperless bills.
  monthly_charges: {source: MonthlyCharges, type: float, min: 0, max: 1000, description: Bill.}
  total_charges:
    source: TotalCharges
    type: float
    min: 0
    max: 100000
    impute: 0.0
    description: Billed so far.
"""
HEADER = "customerID,tenure,Contract,PaperlessBilling,MonthlyCharges,TotalCharges,Churn"
_CONTRACTS = ("Month-to-month", "One year", "Two year")


def _rows(n: int = 400) -> list[str]:
    rows = []
    for i in range(n):
        tenure = i % 72
        total = " " if tenure == 0 else f"{tenure * 50.5:.2f}"
        churn = "Yes" if i % 4 == 0 else "No"
        paperless = "Yes" if i % 3 else "No"
        charges = f"{40 + i % 70}.5"
        rows.append(
            f"{i:04d}-ABCDE,{tenure},{_CONTRACTS[i % 3]},{paperless},{charges},{total},{churn}"
        )
    return rows


def _csv(header: str = HEADER, rows: list[str] | None = None) -> str:
    return "\n".join([header, *(_rows() if rows is None else rows)]) + "\n"


@pytest.fixture
def config(tmp_path: Path, tracking_uri: str, gitops: Path) -> PipelineConfig:
    contract_file = tmp_path / "small-telco.yaml"
    contract_file.write_text(CONTRACT)
    return PipelineConfig(
        data_uri=(tmp_path / "customers.csv").as_uri(),
        reference_uri=None,
        environment="dev",
        tracking_uri=tracking_uri,
        bucket_uri=(tmp_path / "bucket").as_uri(),
        repo=gitops,
        report_dir=tmp_path / "reports",
        contract=load_contract(str(contract_file)),
    )


def _refused(config: PipelineConfig, versions: Callable[[], list[object]]) -> str:
    with pytest.raises(PipelineError) as caught:
        run_pipeline(config, progress=lambda _: None)
    assert versions() == []
    assert git(config.repo, "branch", "--list", "--format=%(refname:short)") == "main"
    return str(caught.value)


def _one_violation(message: str) -> str:
    assert message.startswith("validation failed (report: ")
    (line,) = message.splitlines()[1:]
    return line.strip()


def test_the_clean_file_passes_with_blanks_imputed() -> None:
    frame = pd.read_csv(io.StringIO(_csv()), keep_default_na=False, na_values=[""])
    report = validate(frame, source="d.csv", contract=parse_contract(CONTRACT))
    assert report.passed, report.violations
    assert report.conformed is not None
    assert report.conformed.loc[0, "total_charges"] == 0.0
    assert report.conformed["churn"].sum() == 100


BAD_CSV = [
    (
        "missing-column",
        _csv(HEADER.replace(",TotalCharges", ""), [r.rsplit(",", 2)[0] + ",No" for r in _rows()]),
        "customers.csv: missing column(s) TotalCharges",
    ),
    (
        "extra-column",
        _csv(HEADER + ",gender", [r + ",Female" for r in _rows()]),
        "customers.csv: unexpected column(s) gender",
    ),
    (
        "unmapped-category",
        _csv(rows=[r.replace("Two year", "Three year") for r in _rows()]),
        "customers.csv: column 'Contract' (contract_type): unmapped value(s) 'Three year' (133) "
        "in 133 row(s), such as rows 2, 5, 8, ...; the contract maps "
        "['Month-to-month', 'One year', 'Two year']",
    ),
    (
        "blank-numbers-without-impute",
        _csv(rows=[r.replace(",40.5,", ",  ,") for r in _rows()]),
        "customers.csv: column 'MonthlyCharges' (monthly_charges): blank in 6 row(s), such as "
        "rows 0, 70, 140, ..., and the contract declares no impute for 'monthly_charges'",
    ),
    (
        "third-label-value",
        _csv(
            rows=[r[: -len(",No")] + ",Maybe" if i in {1, 2} else r for i, r in enumerate(_rows())]
        ),
        "customers.csv: column 'Churn' (label): value(s) 'Maybe' (2) in 2 row(s), such as "
        "rows 1, 2 are neither churned ['Yes'] nor retained ['No']",
    ),
    (
        "duplicate-ids",
        _csv(rows=[r.replace("0007-ABCDE", "0003-ABCDE") for r in _rows()]),
        "customers.csv: column 'customerID' (id): duplicate ids in 2 row(s), such as rows 3, 7: "
        "'0003-ABCDE' (2)",
    ),
    (
        "header-only",
        _csv(rows=[]),
        "customers.csv: no rows (the contract 'small-telco' needs data)",
    ),
    (
        "semicolons",
        _csv(HEADER.replace(",", ";"), [r.replace(",", ";") for r in _rows()]),
        "customers.csv: the header is one column "
        "'customerID;tenure;Contract;PaperlessBilling;MonthlyCharges;T' holding ';': the file "
        "is not comma-separated (400 rows); the contract 'small-telco' needs 7 "
        "comma-separated columns",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in BAD_CSV], ids=[c[0] for c in BAD_CSV]
)
def test_bad_data_stops_before_training_with_one_clear_violation(
    config: PipelineConfig, versions: Callable[[], list[object]], text: str, expected: str
) -> None:
    Path(config.data_uri.removeprefix("file://")).write_text(text)
    message = _refused(config, versions)
    assert _one_violation(message).endswith(expected)
    assert (
        (config.report_dir / "validation.md").read_text().startswith("### Data validation: FAILED")
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "customers.csv: the data file is empty"),
        (
            _csv().replace("0001-ABCDE", "0001-ÄBCDE").encode("latin-1"),
            "customers.csv: not UTF-8 text (byte 0xc4 at offset 125); save the CSV as UTF-8",
        ),
        (_csv().encode("utf-16"), "customers.csv: not UTF-8 text (byte 0xff at offset 0)"),
    ],
    ids=["empty-file", "latin-1", "utf-16"],
)
def test_unreadable_files_stop_at_ingest_naming_the_reason(
    config: PipelineConfig, versions: Callable[[], list[object]], data: bytes, expected: str
) -> None:
    Path(config.data_uri.removeprefix("file://")).write_bytes(data)
    assert expected in _refused(config, versions)


def test_a_broken_contract_file_is_refused_with_its_mistakes(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(CONTRACT.replace("max: 120", "max: -1"))
    with pytest.raises(PipelineError, match=r"features\.tenure: min 0 is above max -1"):
        load_contract(str(broken))
    with pytest.raises(PipelineError, match="file not found"):
        load_contract(str(tmp_path / "gone.yaml"))
