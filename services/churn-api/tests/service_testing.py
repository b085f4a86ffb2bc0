"""Helpers for the service's tests: a valid record, settings, real server processes.

Real servers run ``churn-api serve`` as a subprocess on 127.0.0.1 with a free port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from churn_api.contract import FEATURES, CustomerFeatures, feature_contract
from churn_api.settings import Settings
from litestar.testing import TestClient

__all__ = [
    "CHURN_API",
    "VALID_RECORD",
    "Server",
    "free_port",
    "make_settings",
    "random_records",
    "start_server",
    "wait_for",
    "wait_loaded",
]

VALID_RECORD: dict[str, Any] = {
    "tenure": 5,
    "monthly_charges": 70.5,
    "contract_type": "month-to-month",
    "support_tickets": 2,
    "internet_service": "fiber-optic",
    "payment_method": "electronic-check",
    "paperless_billing": True,
    "senior_citizen": False,
}
CHURN_API = str(Path(sys.executable).with_name("churn-api"))


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_settings(model_path: Path, sha256: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "model_uri": model_path.as_uri(),
        "model_sha256": sha256,
        "model_version": "1",
    }
    values.update(overrides)
    return Settings(**values)


def wait_loaded(client: TestClient[Any], timeout: float = 120.0) -> httpx.Response:
    """Poll /readyz until the start-up load has ended (ready or refused)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/readyz")
        if response.json()["reason"] != "loading" or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Server:
    """A real ``churn-api serve`` process."""

    process: subprocess.Popen[str]
    url: str
    terminated: bool = False

    def terminate(self) -> None:
        """Send SIGTERM once: a second one would cut the graceful drain short."""
        if not self.terminated and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.terminated = True

    def accepted_connections(self) -> int:
        """Established TCP connections the server's processes have accepted (Linux /proc).

        A connection still in the listen backlog belongs to no process yet, so this tells
        "the server is handling my request" apart from "the kernel queued my bytes".
        """
        port = int(self.url.rsplit(":", 1)[1])
        pids = [self.process.pid, *_children(self.process.pid)]
        inodes: set[str] = set()
        for pid in pids:
            fds = Path(f"/proc/{pid}/fd")
            for fd in fds.iterdir() if fds.is_dir() else ():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
        established = 0
        for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
            for line in table.read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01" and fields[9] in inodes:
                    established += 1
        return established

    def stop(self) -> str:
        """SIGTERM (unless already sent), wait, and return everything it wrote."""
        self.terminate()
        try:
            out, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        return out


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (Granian's workers), from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            found += [int(child), *_children(int(child))]
    return found


def start_server(env: dict[str, str], *, wait_ready: bool = True, timeout: float = 120.0) -> Server:
    """Start ``churn-api serve`` on a free port and wait for it to answer (and be ready)."""
    port = free_port()
    full_env = {
        **os.environ,
        "CHURN_API_HOST": "127.0.0.1",
        "CHURN_API_PORT": str(port),
        **env,
    }
    process = subprocess.Popen(
        [CHURN_API, "serve"],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{server.stop()}")
        try:
            response = httpx.get(f"{server.url}/readyz", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        if not wait_ready or response.status_code == 200:
            return server
        time.sleep(0.05)
    raise AssertionError(f"server not ready in {timeout}s:\n{server.stop()}")


def random_records(n: int, seed: int) -> list[CustomerFeatures]:
    """Records spread over the whole contract, its corners included."""
    rng = np.random.default_rng(seed)
    spec = feature_contract()
    columns: dict[str, list[object]] = {}
    for name in FEATURES:
        info = spec[name]
        if info["type"] == "category":
            columns[name] = list(rng.choice(list(info["categories"]), size=n))  # type: ignore[call-overload]
        elif info["type"] == "bool":
            columns[name] = [bool(v) for v in rng.integers(0, 2, size=n)]
        elif info["type"] == "int":
            low, high = int(str(info["min"])), int(str(info["max"]))
            columns[name] = [int(v) for v in rng.integers(low, high, size=n, endpoint=True)]
        else:
            low_f, high_f = float(str(info["min"])), float(str(info["max"]))
            values = rng.uniform(low_f, high_f, size=n)
            values[:10], values[10:20] = low_f, high_f
            columns[name] = [float(v) for v in values]
    return [CustomerFeatures(**{k: columns[k][i] for k in FEATURES}) for i in range(n)]
