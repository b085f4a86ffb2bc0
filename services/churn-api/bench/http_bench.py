"""HTTP benchmark: one table of req/s, p50 and p99 for the real server on loopback.

Steps: build the fixture model; start ``churn-api serve`` with 1 worker, pinned
to CPU 0; for each endpoint run ``wrk`` pinned to CPU 1 (so the load generator
never takes the server's core), first a short warm-up, then a bounded measured
run; the compared rows are measured in turn for ``--rounds`` rounds and each
reports its median run; print one table and the ratios run by run. The floor
is ``GET /healthz`` on the same app and server: the app's cost for a request
that does nothing. Loopback only, bounded in time.

The shadow's cost is measured like with like: two more servers side by side, each capturing
every prediction (sample rate 1.0) into its own SQLite store in the temporary
directory, the same settings otherwise, one without a shadow and one with a
shadow pinned (which scores what capture samples, in capture's flush thread).
The ratio of their ``/v1/predict`` rates is printed under the table.

The load generator is Debian's ``wrk`` (C, event-driven: one thread drives many
connections without needing a core of Python). When it is missing and we are
root on Debian, it is installed with apt-get.

Usage: python services/churn-api/bench/http_bench.py [--seconds 5] [--connections 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from churn_api.fixture import fixture_onnx_bytes

RECORD = {
    "tenure": 5,
    "monthly_charges": 70.5,
    "contract_type": "month-to-month",
    "support_tickets": 2,
    "internet_service": "fiber-optic",
    "payment_method": "electronic-check",
    "paperless_billing": True,
    "senior_citizen": False,
}
SERVER_CPU, CLIENT_CPU = 0, 1
PREDICT = "POST /v1/predict, 1 record"
CAPTURED = "POST /v1/predict, 1 record, capture on (rate 1.0, SQLite)"
SHADOWED = "POST /v1/predict, 1 record, capture on (rate 1.0, SQLite), shadow loaded"
FLOOR = "POST /bench/floor (POST floor: reads the body)"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    apt = shutil.which("apt-get")
    if not found and apt and os.geteuid() == 0:
        print("installing wrk (Debian package) ...", flush=True)
        for step in (["update", "-qq"], ["install", "-y", "-qq", "wrk"]):
            subprocess.run([apt, *step], check=True, stdout=subprocess.DEVNULL)  # noqa: S603
        found = shutil.which("wrk")
    if not found:
        sys.exit("http_bench: needs `wrk` (Debian: apt-get install wrk; macOS: brew install wrk)")
    return found


def pinned(cpu: int, command: list[str]) -> list[str]:
    """``command`` run on one CPU only (taskset, util-linux)."""
    taskset = shutil.which("taskset")
    if not taskset:
        sys.exit("http_bench: needs `taskset` (util-linux) to keep client and server apart")
    return [taskset, "-c", str(cpu), *command]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("http_bench: the server exited before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("http_bench: the server was not ready in time")


def wait_shadow(url: str, timeout: float = 120) -> None:
    """Poll GET /v1/model until the shadow is loaded."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{url}/v1/model", timeout=5) as response:  # noqa: S310
            if json.loads(response.read())["shadow"]["ready"]:
                return
        if time.monotonic() > deadline:
            sys.exit(f"http_bench: the shadow did not load within {timeout:.0f}s")
        time.sleep(0.2)


@contextlib.contextmanager
def serving(command: list[str], env: dict[str, str], url: str) -> Iterator[None]:
    """A server started with ``env``, ready; stopped with SIGTERM on the way out."""
    server = subprocess.Popen(  # noqa: S603 - our own command line
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_ready(url, server)
        yield
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def capture_counts(url: str) -> dict[str, float]:
    """What a capturing server wrote, dropped, and had its shadow score, from /metrics."""
    names = {
        "churn_api_capture_written_total": "written",
        "churn_api_capture_dropped_total": "dropped",
        "churn_api_shadow_predictions_total": "shadow scored",
    }
    counts = dict.fromkeys(names.values(), 0.0)
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:  # noqa: S310
        for line in response.read().decode().splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in names:
                counts[names[name]] += float(line.rsplit(" ", 1)[1])
    return counts


def parse(output: str) -> tuple[float, float, float]:
    """req/s, p50 ms and p99 ms from ``wrk --latency`` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        match = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        assert match, output
        value, unit = match.groups()
        return float(value) * UNITS[unit]

    if "Non-2xx" in output or "Socket errors" in output:
        sys.exit(f"http_bench: errors during the run:\n{output}")
    return rps, percentile("50"), percentile("99")


def run_wrk(
    wrk: str,
    url: str,
    path: str,
    body: bytes | None,
    *,
    seconds: int,
    connections: int,
    scripts: Path,
) -> tuple[float, float, float]:
    command = pinned(CLIENT_CPU, [wrk, "-t1", f"-c{connections}", "--latency", "--timeout", "10s"])
    if body is not None:
        script = scripts / f"{abs(hash(path))}.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
        )
        command += ["-s", str(script)]
    warm = subprocess.run(  # noqa: S603 - our own command line
        [*command, "-d1s", url + path], capture_output=True, text=True, timeout=60, check=True
    )
    parse(warm.stdout)
    measured = subprocess.run(  # noqa: S603 - our own command line
        [*command, f"-d{seconds}s", url + path],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    )  # fmt: skip
    return parse(measured.stdout)


def granian_command(port: int) -> list[str]:
    """One Granian worker serving the app plus the floor route, pinned to the server's CPU."""
    granian = Path(sys.executable).with_name("granian")
    return pinned(SERVER_CPU, [
        str(granian), "--interface", "asgi", "--factory", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log",
        "--working-dir", str(Path(__file__).parent), "floor_app:app_with_floor",
    ])  # fmt: skip


Result = tuple[float, float, float]


def median_run(runs: list[Result]) -> Result:
    """The run with the median rate (its p50 and p99 come with it)."""
    return sorted(runs)[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=5, help="measured seconds per run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per row")
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("http_bench: needs 2 CPUs (one for the server, one for the load generator)")
    wrk = ensure_wrk()

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
            "CHURN_API_LOG_LEVEL": "WARNING",  # the request log line is INFO: not measured here
        }
        one = json.dumps(RECORD).encode()
        batch = json.dumps({"records": [RECORD] * 1000}).encode()
        runs: dict[str, list[Result]] = {}

        def measure(label: str, url: str, path: str, body: bytes | None) -> None:
            result = run_wrk(
                wrk, url, path, body, seconds=args.seconds, connections=args.connections,
                scripts=work,
            )  # fmt: skip
            runs.setdefault(label, []).append(result)

        # Rows that are compared are measured in turn, round after round, and each reports
        # its median run: a drift of the machine during the bench touches them all alike.
        rows = [
            ("GET /healthz (GET floor)", "/healthz", None),
            (FLOOR, "/bench/floor", one),
            (PREDICT, "/v1/predict", one),
            ("POST /v1/predict?explain=true, 1 record", "/v1/predict?explain=true", one),
        ]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with serving(granian_command(port), {**env, "CHURN_API_PORT": str(port)}, url):
            for _ in range(args.rounds):
                for label, path, body in rows:
                    measure(label, url, path, body)
            measure("POST /v1/predict/batch, 1,000 records", url, "/v1/predict/batch", batch)

        # The shadow's cost, like with like: two servers side by side, both capturing every
        # prediction into a fresh SQLite store of their own, only the shadow pin differing;
        # measured in turn (the idle one costs the other nothing).
        (work / "shadow.onnx").write_bytes(shadow := fixture_onnx_bytes(version="bench-shadow"))
        servers = {
            CAPTURED: {"CHURN_CAPTURE_URL": f"sqlite:///{work / 'without-shadow.db'}"},
            SHADOWED: {
                "CHURN_CAPTURE_URL": f"sqlite:///{work / 'with-shadow.db'}",
                "SHADOW_MODEL_URI": (work / "shadow.onnx").as_uri(),
                "SHADOW_MODEL_SHA256": hashlib.sha256(shadow).hexdigest(),
                "SHADOW_MODEL_VERSION": "bench-shadow",
            },
        }
        urls: dict[str, str] = {}
        with contextlib.ExitStack() as stack:
            for label, extra in servers.items():
                port = free_port()
                urls[label] = f"http://127.0.0.1:{port}"
                settings = {**env, "CHURN_API_PORT": str(port), "CHURN_CAPTURE_SAMPLE_RATE": "1.0"}
                stack.enter_context(
                    serving(granian_command(port), {**settings, **extra}, urls[label])
                )
            wait_shadow(urls[SHADOWED])
            for _ in range(args.rounds):
                for label in servers:
                    measure(label, urls[label], "/v1/predict", one)
            captured = {label: capture_counts(urls[label]) for label in servers}

    report(runs, captured, args)


def report(
    runs: dict[str, list[Result]], captured: dict[str, dict[str, float]], args: argparse.Namespace
) -> None:
    """The table of median runs, then the two ratios run by run, then what capture wrote."""
    results = {label: median_run(label_runs) for label, label_runs in runs.items()}
    get_floor = results["GET /healthz (GET floor)"][0]
    post_floor = results[FLOOR][0]
    print()
    print(
        f"churn-api over loopback: granian, 1 worker on CPU {SERVER_CPU}; wrk on CPU"
        f" {CLIENT_CPU}, {args.connections} connections; each row the median of"
        f" {args.rounds} interleaved {args.seconds}s runs (batch: one run)"
    )
    print()
    print("| endpoint | req/s | records/s | p50 ms | p99 ms | vs GET floor | vs POST floor |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, (rps, p50, p99) in results.items():
        records = 1000 if "1,000 records" in label else 1
        print(
            f"| {label} | {rps:,.0f} | {rps * records:,.0f} | {p50:.2f} | {p99:.2f} "
            f"| {rps / get_floor:.2f}x | {rps / post_floor:.2f}x |"
        )
    print()
    predict = [p[0] / f[0] for p, f in zip(runs[PREDICT], runs[FLOOR], strict=True)]
    print(
        "/v1/predict vs the POST floor, run by run: "
        + ", ".join(f"{r:.2f}x" for r in predict)
        + " (>= 0.95x)"
    )
    shadowed = [s[0] / c[0] for s, c in zip(runs[SHADOWED], runs[CAPTURED], strict=True)]
    print(
        "/v1/predict with a shadow loaded vs without (capture on at rate 1.0 in both), run by run: "
        + ", ".join(f"{r:.2f}x" for r in shadowed)
        + " (>= 0.9x)"
    )
    # Records still queued at the end are neither: a store that fell behind shows as drops.
    for label, counts in captured.items():
        print(f"{label}: " + ", ".join(f"{k} {v:,.0f}" for k, v in counts.items()))
    print()


if __name__ == "__main__":
    main()
