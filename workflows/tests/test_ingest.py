"""Ingest: CSV and Parquet, file:// and s3:// (moto's server, the one fake), digests, bad files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from churn_workflows import PipelineError
from churn_workflows.steps.ingest import main, read_dataset, resolve_source, write_dataset


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_reads_what_it_wrote_with_the_bytes_digest(
    tmp_path: Path, frame: pd.DataFrame, suffix: str
) -> None:
    uri = (tmp_path / f"data{suffix}").as_uri()
    write_dataset(frame, uri)
    dataset = read_dataset(uri)
    assert dataset.sha256 == hashlib.sha256((tmp_path / f"data{suffix}").read_bytes()).hexdigest()
    assert list(dataset.frame.columns) == list(frame.columns)
    assert len(dataset.frame) == len(frame)


def test_reads_from_s3(s3_endpoint: str, frame: pd.DataFrame) -> None:
    uri = "s3://churn-dev-data/snapshots/customers.parquet"
    write_dataset(frame.head(100), uri)
    assert len(read_dataset(uri).frame) == 100
    with pytest.raises(
        PipelineError,
        match=r"s3://churn-dev-data/missing.parquet: cannot read from S3 \(NoSuchKey\)",
    ):
        read_dataset("s3://churn-dev-data/missing.parquet")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    uri = (tmp_path / "nope.parquet").as_uri()
    with pytest.raises(PipelineError, match=f"{uri}: file not found"):
        read_dataset(uri)


def test_a_corrupt_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(PipelineError, match=f"{path.as_uri()}: cannot parse as parquet"):
        read_dataset(path.as_uri())


def test_an_empty_or_unknown_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(PipelineError, match=r"empty\.csv: the data file is empty"):
        read_dataset(str(tmp_path / "empty.csv"))
    with pytest.raises(PipelineError, match=r"unknown data format '\.xlsx'"):
        read_dataset(str(tmp_path / "data.xlsx"))


def test_data_sources_resolve_per_environment() -> None:
    assert resolve_source("snapshot", "prod") == "s3://churn-prod-data/snapshots/customers.parquet"
    assert resolve_source("synthetic", "dev") == "synthetic"


def test_command_copies_the_data_and_records_its_digest(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    write_dataset(frame, str(tmp_path / "in.csv"))
    code = main(
        [
            "--data-source",
            str(tmp_path / "in.csv"),
            "--output",
            str(tmp_path / "out.parquet"),
            "--digest-file",
            str(tmp_path / "sha"),
            "--source-file",
            str(tmp_path / "src"),
        ]
    )
    assert code == 0
    assert (tmp_path / "sha").read_text() == read_dataset(str(tmp_path / "in.csv")).sha256
    assert len(read_dataset(str(tmp_path / "out.parquet")).frame) == len(frame)


def test_command_reports_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--data-source", str(tmp_path / "gone.csv"), "--output", str(tmp_path / "o.parquet")]
    )
    assert code == 1
    assert "gone.csv: file not found" in capsys.readouterr().err


def test_command_generates_synthetic_data_in_the_pod(tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    code = main([
        "--data-source", "synthetic", "--synthetic-rows", "200",
        "--output", str(out), "--source-file", str(tmp_path / "src"),
    ])  # fmt: skip
    assert code == 0
    assert len(read_dataset(str(out)).frame) == 200
    assert (tmp_path / "src").read_text() == "synthetic"
