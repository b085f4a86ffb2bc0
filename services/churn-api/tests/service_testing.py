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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from churn_api.settings import Settings
from litestar.testing import TestClient

__all__ = [
    "CHURN_API",
    "VALID_RECORD",
    "Server",
    "free_port",
    "make_settings",
    "start_server",
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


def wait_loaded(client: TestClient[Any], timeout: float = 30.0) -> httpx.Response:
    """Poll /readyz until the start-up load has ended (ready or refused)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/readyz")
        if response.json()["reason"] != "loading" or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


@dataclass
class Server:
    """A real ``churn-api serve`` process."""

    process: subprocess.Popen[str]
    url: str

    def stop(self) -> str:
        """SIGTERM, wait, and return everything it wrote."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        return out


def start_server(env: dict[str, str], *, wait_ready: bool = True, timeout: float = 60.0) -> Server:
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
