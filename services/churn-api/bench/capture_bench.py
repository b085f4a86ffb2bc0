"""Capture benchmark: /v1/predict with capture off and on (rate 1.0, real PostgreSQL), and COPY.

Steps: create a throwaway database on the local PostgreSQL
(``CHURN_TEST_POSTGRES_URL``); serve the fixture model twice, one after the
other on the same CPU with the same settings, capture off then capture on into
that database; measure ``POST /v1/predict`` with ``wrk`` (http_bench's
helpers); read how many records the capturing server wrote and dropped; time
the store's COPY of 200,000 rows on its own. Print one table; drop the database.

The load generator is ``wrk`` when installed, else a small asyncio client on
keep-alive connections pinned to the other CPU. Beside req/s the table gives
the server's own CPU time per request (from /proc), which does not depend on
whether the client or the server is the bottleneck.

Usage: python services/churn-api/bench/capture_bench.py [--seconds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from churn_api.fixture import fixture_onnx_bytes
from churn_store.prediction_store import CapturedPrediction, open_store
from http_bench import RECORD, SERVER_CPU, free_port, pinned, run_wrk, wait_ready

CLIENT_CPU = 1

POSTGRES_URL = os.environ.get(
    "CHURN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _metric(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:  # noqa: S310
        for line in response.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def _requests(url: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:  # noqa: S310
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in response.read().decode().splitlines()
            if line.startswith("churn_api_requests_total{") and 'route="/v1/predict"' in line
        )


def _serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - our own command line
        pinned(SERVER_CPU, [str(Path(sys.executable).with_name("churn-api")), "serve"]),
        env={**env, "CHURN_API_PORT": str(port)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, server)
    return server, url


async def _client(
    port: int, body: bytes, seconds: float, connections: int
) -> tuple[int, list[float]]:
    request = (
        b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []

    async def one_connection() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        done = 0
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            latencies.append(time.perf_counter() - sent)
            done += 1
        writer.close()
        return done

    counts = await asyncio.gather(*(one_connection() for _ in range(connections)))
    return sum(counts), latencies


def _load(url: str, body: bytes, seconds: int, connections: int) -> tuple[float, float, float]:
    port = int(url.rsplit(":", 1)[1])
    os.sched_setaffinity(0, {CLIENT_CPU})
    asyncio.run(_client(port, body, 1.0, connections))  # warm-up
    count, latencies = asyncio.run(_client(port, body, float(seconds), connections))
    ordered = sorted(latencies)
    return (
        count / seconds,
        ordered[len(ordered) // 2] * 1e3,
        ordered[int(len(ordered) * 0.99)] * 1e3,
    )


def _cpu_seconds(pid: int) -> float:
    # utime + stime of the server and its children (granian's worker), in clock ticks.
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for task in [pid, *_children(pid)]:
        fields = Path(f"/proc/{task}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found += [int(entry.name), *_children(int(entry.name))]
    return found


def _copy_rate(url: str, rows: int = 200_000, batch: int = 500) -> float:
    store = open_store(url)
    store.migrate()
    now = datetime.now(UTC)
    features = json.dumps(RECORD)
    records = [
        CapturedPrediction(str(uuid.uuid4()), now, "bench", "0" * 64, None, features, 0.5,
                           True, 0.5)
        for _ in range(rows)
    ]  # fmt: skip
    started = time.perf_counter()
    for start in range(0, rows, batch):
        store.write_predictions(records[start : start + batch])
    elapsed = time.perf_counter() - started
    store.close()
    return rows / elapsed


def main() -> None:  # noqa: PLR0915 - one straight script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=5, help="measured seconds per row")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    database = f"churn_bench_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(POSTGRES_URL)
    store_url = urlunsplit((parts.scheme, parts.netloc, f"/{database}", "", ""))
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            data = fixture_onnx_bytes(version="bench")
            (work / "model.onnx").write_bytes(data)
            env = {
                **os.environ,
                "MODEL_URI": (work / "model.onnx").as_uri(),
                "MODEL_SHA256": hashlib.sha256(data).hexdigest(),
                "MODEL_VERSION": "bench",
                "CHURN_API_HOST": "127.0.0.1",
                "CHURN_API_WORKERS": "1",
                "CHURN_API_LOG_LEVEL": "WARNING",
            }
            env.pop("CHURN_CAPTURE_URL", None)
            one = json.dumps(RECORD).encode()
            results = []
            for label, extra in (
                ("capture off", {}),
                ("capture on, rate 1.0, PostgreSQL", {"CHURN_CAPTURE_URL": store_url}),
            ):
                server, url = _serve({**env, **extra})
                try:
                    cpu_before = _cpu_seconds(server.pid)
                    requests_before = _requests(url)
                    if wrk:
                        rps, p50, p99 = run_wrk(
                            wrk, url, "/v1/predict", one, seconds=args.seconds,
                            connections=args.connections, scripts=work,
                        )  # fmt: skip
                    else:
                        rps, p50, p99 = _load(url, one, args.seconds, args.connections)
                    served = _requests(url) - requests_before
                    cpu_us = (_cpu_seconds(server.pid) - cpu_before) / max(served, 1) * 1e6
                    time.sleep(1.5)  # the last flush interval
                    written = _metric(url, "churn_api_capture_written_total")
                    dropped = sum(
                        _metric(url, f'churn_api_capture_dropped_total{{reason="{r}"}}')
                        for r in ("queue_full", "store_error")
                    )
                finally:
                    server.send_signal(signal.SIGTERM)
                    server.wait(30)
                results.append((label, rps, p50, p99, cpu_us, written, dropped))
        copy_rate = _copy_rate(store_url)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    off, off_cpu = results[0][1], results[0][4]
    print()
    print(
        f"POST /v1/predict, 1 record: granian 1 worker on CPU {SERVER_CPU}, "
        f"{'wrk' if wrk else 'asyncio client'} on CPU {CLIENT_CPU}, "
        f"{args.connections} connections, {args.seconds}s"
    )
    print()
    print(
        "| server | req/s | vs off | p50 ms | p99 ms | server CPU us/req | req per CPU vs off "
        "| captured | dropped |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, rps, p50, p99, cpu_us, written, dropped in results:
        print(
            f"| {label} | {rps:,.0f} | {rps / off:.2f}x | {p50:.2f} | {p99:.2f} | {cpu_us:.0f} "
            f"| {off_cpu / cpu_us:.2f}x | {written:,.0f} | {dropped:,.0f} |"
        )
    print()
    print(f"prediction store COPY, batches of 500: {copy_rate:,.0f} records/s")
    print()


if __name__ == "__main__":
    main()
