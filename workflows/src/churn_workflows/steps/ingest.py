"""Ingest: read a dataset from a URI (CSV or Parquet, ``file://`` or ``s3://``) and digest it.

Steps: fetch the bytes, compute their sha256 (the lineage every later step
carries), parse them by the file's suffix. A missing, empty, non-UTF-8 or
unparsable file is a PipelineError naming the URI and what is wrong. CSV cells
are read as written: only an empty cell is missing (``NA`` or ``None`` stay text,
for the contract to map or refuse).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlparse

import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from churn_workflows import PipelineError, exit_code
from churn_workflows.storage import read_bytes, write_bytes

__all__ = [
    "Dataset",
    "data_format",
    "main",
    "read_dataset",
    "resolve_source",
    "write_dataset",
]


@dataclass(frozen=True)
class Dataset:
    """A dataset as read: where from, its bytes' sha256 and the frame."""

    uri: str
    sha256: str
    frame: pd.DataFrame


def data_format(uri: str) -> str:
    """``csv`` or ``parquet``, from the URI's suffix."""
    suffix = PurePosixPath(urlparse(uri).path).suffix.lower()
    if suffix in {".csv", ".parquet"}:
        return suffix[1:]
    raise PipelineError(f"{uri}: unknown data format {suffix or '(none)'!r}; use .csv or .parquet")


def read_dataset(uri: str) -> Dataset:
    """Read the dataset at ``uri``."""
    kind = data_format(uri)
    raw = read_bytes(uri)
    if not raw:
        raise PipelineError(f"{uri}: the data file is empty")
    if kind == "csv":
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PipelineError(
                f"{uri}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                "save the CSV as UTF-8"
            ) from None
    try:
        frame = (
            pd.read_csv(
                io.BytesIO(raw), encoding="utf-8-sig", keep_default_na=False, na_values=[""]
            )
            if kind == "csv"
            else pd.read_parquet(io.BytesIO(raw))
        )
    except Exception as exc:  # the parsers raise many types; all mean "corrupt"
        raise PipelineError(f"{uri}: cannot parse as {kind}: {exc}") from None
    return Dataset(uri=uri, sha256=hashlib.sha256(raw).hexdigest(), frame=frame)


def write_dataset(frame: pd.DataFrame, uri: str) -> str:
    """Write ``frame`` to ``uri`` in the format its suffix names."""
    buffer = io.BytesIO()
    if data_format(uri) == "csv":
        frame.to_csv(buffer, index=False)
    else:
        frame.to_parquet(buffer, index=False)
    return write_bytes(uri, buffer.getvalue())


def resolve_source(data_source: str, environment: str) -> str:
    """The URI a ``data-source`` names: ``snapshot`` is the environment's latest export."""
    if data_source == "snapshot":
        return f"s3://churn-{environment}-data/snapshots/customers.parquet"
    if data_source == "synthetic":
        return "synthetic"
    return data_source


def main(argv: Sequence[str] | None = None) -> int:
    """Copy a dataset to a local Parquet file and record its digest (Argo's ingest)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data-source", required=True, help="snapshot, synthetic or a URI (s3://, file://)"
    )
    parser.add_argument("--environment", default="dev")
    parser.add_argument("--synthetic-rows", type=int, default=100_000)
    parser.add_argument("--output", required=True, help="where the Parquet copy goes")
    parser.add_argument("--digest-file", help="write the sha256 here (an Argo output)")
    parser.add_argument("--source-file", help="write the source URI here (an Argo output)")
    args = parser.parse_args(argv)
    source = resolve_source(args.data_source, args.environment)
    try:
        if source == "synthetic":
            # Imported here: synthetic imports this module to write its output.
            from churn_workflows.steps.synthetic import generate  # noqa: PLC0415

            write_dataset(generate(args.synthetic_rows), args.output)
            dataset = read_dataset(args.output)
            dataset = Dataset(uri="synthetic", sha256=dataset.sha256, frame=dataset.frame)
        else:
            dataset = read_dataset(source)
            write_dataset(dataset.frame, args.output)
    except PipelineError as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return exit_code(exc)
    if args.digest_file:
        write_bytes(args.digest_file, dataset.sha256.encode())
    if args.source_file:
        write_bytes(args.source_file, dataset.uri.encode())
    print(json.dumps({"source": dataset.uri, "rows": len(dataset.frame), "sha256": dataset.sha256}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
