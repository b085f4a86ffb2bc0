"""Real processes for the monitoring tests: churn-api with a fixture model, and Prometheus.

Both listen on 127.0.0.1 only, on free ports, and are stopped (SIGTERM, then SIGKILL) by
whoever started them. Records for load are drawn from the feature contract with a fixed seed.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
import yaml
from churn_api.capture import LIVE_METRICS
from churn_api.contract import feature_contract
from churn_store.prediction_store import MonitorResult, open_store

__all__ = [
    "ChurnApi",
    "Prometheus",
    "free_port",
    "pods_by_role",
    "records",
    "start_churn_api",
    "start_prometheus",
]

CHURN_API: Final = str(Path(sys.executable).with_name("churn-api"))
# Upper bounds for a plausible customer mix, tighter than the contract's hard limits.
TYPICAL_MAX: Final = {"tenure": 72, "support_tickets": 4}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class _Process:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class ChurnApi(_Process):
    """A ``churn-api serve`` process."""

    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def metrics(self) -> str:
        response = self.client.get(f"{self.url}/metrics")
        response.raise_for_status()
        return response.text

    def predict(self, record: Mapping[str, Any]) -> int:
        return self.client.post(f"{self.url}/v1/predict", json=dict(record)).status_code


def _wait(process: _Process, path: str, ready: bool, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise AssertionError(f"{process.url} exited early:\n{process.output()}")
        try:
            status = httpx.get(f"{process.url}{path}", timeout=2).status_code
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        if status == 200 or not ready:
            return
        time.sleep(0.1)
    process.stop()
    raise AssertionError(f"{process.url}{path} not answering in {timeout}s:\n{process.output()}")


def _seed_monitor_results(store_url: str, version: str) -> None:
    # The numbers churn-monitor writes, so the churn_model_live_* gauges have series to read.
    store = open_store(store_url)
    store.migrate()
    today = datetime.now(UTC).date()
    store.write_monitor_results(
        [MonitorResult(today, version, f"window.{name}", 0.5) for name in LIVE_METRICS]
    )
    store.close()


def start_churn_api(
    model_path: Path,
    sha256: str,
    version: str,
    logs: Path,
    *,
    ready: bool = True,
    capture_url: str | None = None,
) -> ChurnApi:
    """Serve ``model_path``; with ``ready=False`` only wait until it answers (a refused model).

    Capture is on, into ``capture_url`` or a fresh SQLite store already holding a
    day of churn-monitor's numbers.
    """
    port = free_port()
    if capture_url is None:
        capture_url = f"sqlite:///{logs / f'predictions-{port}.db'}"
        _seed_monitor_results(capture_url, version)
    env = {
        **os.environ,
        "MODEL_URI": model_path.as_uri(),
        "MODEL_SHA256": sha256,
        "MODEL_VERSION": version,
        # Capture on, as in the clusters: its metrics are part of what rules may read.
        "CHURN_CAPTURE_URL": capture_url,
    }
    log = logs / f"churn-api-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [CHURN_API, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    api = ChurnApi(process, f"http://127.0.0.1:{port}", log)
    _wait(api, "/readyz", ready, 180)
    if ready:
        _wait_for_live_gauges(api, 30)
    return api


def _wait_for_live_gauges(api: ChurnApi, timeout: float) -> None:
    # The capture task reads the monitor's numbers just after start; wait until it has.
    deadline = time.monotonic() + timeout
    while not re.search(r"^churn_model_live_\w+\{", api.metrics(), flags=re.MULTILINE):
        if time.monotonic() > deadline:
            raise AssertionError(f"{api.url}: no churn_model_live_* series in {timeout}s")
        time.sleep(0.1)


@dataclass
class Prometheus(_Process):
    """A ``prometheus`` server with its own data directory."""

    def query(self, expr: str) -> list[float]:
        """An instant query's vector as numbers (what Argo Rollouts hands to its conditions)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"query failed: {body.get('error')}\n{expr}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [float(data["result"][1])]
        return [float(sample["value"][1]) for sample in data["result"]]


def start_prometheus(
    targets: Mapping[str, Mapping[str, str]], rules: Path, workdir: Path, interval: str = "1s"
) -> Prometheus:
    """Scrape each ``url -> target labels`` every ``interval`` and evaluate ``rules``."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise AssertionError("prometheus is not on PATH: run `make tools`")
    port = free_port()
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": "churn-api",
                "scrape_timeout": interval,
                "static_configs": [
                    {"targets": [url.removeprefix("http://")], "labels": dict(labels)}
                    for url, labels in targets.items()
                ],
            }
        ],
    }
    config_path = workdir / "prometheus.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log = workdir / "prometheus.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(process, f"http://127.0.0.1:{port}", log)
    _wait(server, "/-/ready", True, 180)
    return server


def records(count: int, seed: int, **fixed: Any) -> list[dict[str, Any]]:
    """``count`` valid customer records drawn from the feature contract; ``fixed`` overrides."""
    rng = random.Random(seed)
    spec = feature_contract()
    drawn = []
    for _ in range(count):
        record: dict[str, Any] = {}
        for name, info in spec.items():
            kind = info["type"]
            if kind == "category":
                record[name] = rng.choice(list(info["categories"]))  # type: ignore[arg-type]
            elif kind == "bool":
                record[name] = rng.random() < 0.5
            elif kind == "int":
                high = min(int(str(info["max"])), TYPICAL_MAX.get(name, 100))
                record[name] = rng.randint(int(str(info["min"])), high)
            else:
                record[name] = round(rng.uniform(20.0, 120.0), 2)
        record.update(fixed)
        drawn.append(record)
    return drawn


@contextmanager
def pods_by_role(
    model_path: Path,
    pins: Mapping[str, tuple[str, bool]],
    rules: Path,
    workdir: Path,
    hash_suffix: str,
) -> Iterator[tuple[dict[str, ChurnApi], dict[str, str], Prometheus]]:
    """churn-api processes by role, each scraped as a pod of its own pod-template hash.

    ``pins`` maps a role to (sha256, whether that pin loads); the hash of role ``r`` is
    ``r + hash_suffix``. Yields the processes, the hashes and one Prometheus; stops them all.
    """
    with ThreadPoolExecutor(max_workers=len(pins)) as pool:
        started = {
            role: pool.submit(start_churn_api, model_path, pin, "1", workdir, ready=ready)
            for role, (pin, ready) in pins.items()
        }
        apis = {role: future.result() for role, future in started.items()}
    hashes = {role: f"{role}{hash_suffix}" for role in apis}
    prometheus = None
    try:
        targets = {
            api.url: {
                "namespace": "churn",
                "pod": f"churn-api-{hashes[role]}-0",
                "service": "churn-api-metrics",
                "rollouts_pod_template_hash": hashes[role],
            }
            for role, api in apis.items()
        }
        prometheus = start_prometheus(targets, rules, workdir)
        yield apis, hashes, prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        for api in apis.values():
            api.stop()
