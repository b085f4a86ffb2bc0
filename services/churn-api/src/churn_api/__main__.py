"""The ``churn-api`` command.

- ``churn-api serve``: settings from the environment (docs/contracts.md), then the
  Granian server with the app. A settings error prints one JSON line and exits 2.
- ``churn-api serve-local``: what ``make serve`` runs: 127.0.0.1:8000 with the
  model ``make demo`` last promoted (``.local/last-promoted.json``), or else
  with a fixture model built under ``.local/churn-api/`` (needs the dev
  dependencies); it says which.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server import Server

from churn_api.logs import JsonFormatter
from churn_api.settings import SettingsError, load_settings

__all__ = ["GRACEFUL_SECONDS", "AddressInUseError", "main", "refuse_taken_address", "serve"]

# Seconds a worker gets to finish in-flight requests after SIGTERM before it is killed.
GRACEFUL_SECONDS: Final = 20
LAST_PROMOTED: Final = Path(".local/last-promoted.json")
FIXTURE_MODEL: Final = Path(".local/churn-api/fixture-model.onnx")


def _granian_logging() -> dict[str, Any]:
    # Granian's own lines (start, workers, shutdown) in the same JSON shape as ours.
    return {
        "formatters": {
            "generic": {"()": f"{JsonFormatter.__module__}.{JsonFormatter.__qualname__}"},
            "access": {"()": f"{JsonFormatter.__module__}.{JsonFormatter.__qualname__}"},
        },
    }


class AddressInUseError(SystemExit):
    """Another process already listens on the address."""


def refuse_taken_address(host: str, port: int) -> None:
    """Exit with one clear line when something already listens on ``host:port``.

    Granian binds with SO_REUSEPORT, so a second server on a taken port would start and
    share the traffic with the first. A plain bind (SO_REUSEADDR only, which still ignores
    connections in TIME_WAIT) fails on any listener, and says so before Granian starts.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise AddressInUseError(
                f"churn-api: cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from None


def serve(host: str, port: int, workers: int, log_level: str) -> None:
    """Run Granian on ``host:port`` with the app built from the environment in each worker."""
    refuse_taken_address(host, port)
    Server(
        "churn_api.app:app_from_env",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        log_level=LogLevels(log_level.lower()),
        log_dictconfig=_granian_logging(),
        log_access=False,  # the app logs each request itself, with the model version
        workers_kill_timeout=GRACEFUL_SECONDS,
    ).serve()


def _settings_or_exit() -> Any:
    try:
        return load_settings(os.environ)
    except SettingsError as exc:
        print(
            json.dumps({"level": "ERROR", "event": "invalid_settings", "detail": str(exc)}),
            file=sys.stderr,
        )
        raise SystemExit(2) from None


def _local_pin() -> tuple[dict[str, str], str]:
    """The pin to serve locally and a sentence saying where it comes from."""
    if LAST_PROMOTED.is_file():
        pin = json.loads(LAST_PROMOTED.read_text())
        if {"MODEL_URI", "MODEL_SHA256", "MODEL_VERSION"} <= set(pin):
            return (
                {k: str(pin[k]) for k in ("MODEL_URI", "MODEL_SHA256", "MODEL_VERSION")},
                f"the model `make demo` last promoted: version {pin['MODEL_VERSION']}"
                f" ({pin['MODEL_URI']})",
            )
    try:
        # Only here: the fixture needs scikit-learn, which the service never imports.
        from churn_api.fixture import build_fixture_model  # noqa: PLC0415
    except ImportError as exc:
        raise SystemExit(
            f"no {LAST_PROMOTED} and no dev dependencies to build a fixture model: {exc}"
        ) from None
    sha256 = build_fixture_model(FIXTURE_MODEL.resolve(), version="fixture")
    return (
        {
            "MODEL_URI": FIXTURE_MODEL.resolve().as_uri(),
            "MODEL_SHA256": sha256,
            "MODEL_VERSION": "fixture",
        },
        f"a fixture model built at {FIXTURE_MODEL}"
        f" (no {LAST_PROMOTED}: run `make demo` to promote one)",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run it."""
    parser = argparse.ArgumentParser(prog="churn-api", description="Serve the churn model.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve with settings from the environment")
    run.add_argument("--host", help="listen address (default: CHURN_API_HOST)")
    run.add_argument("--port", type=int, help="listen port (default: CHURN_API_PORT)")
    run.add_argument("--workers", type=int, help="worker processes (default: CHURN_API_WORKERS)")
    local = commands.add_parser("serve-local", help="serve the last promoted or a fixture model")
    local.add_argument("--port", type=int, default=8000, help="listen port (default: 8000)")
    args = parser.parse_args(argv)

    if args.command == "serve-local":
        pin, source = _local_pin()
        os.environ.update(pin)
        url = f"http://127.0.0.1:{args.port}"
        print(f"churn-api: serving {source} on {url} (docs at {url}/docs)", flush=True)
        settings = _settings_or_exit()
        serve("127.0.0.1", args.port, 1, settings.log_level)
        return
    if args.port is not None:
        os.environ["CHURN_API_PORT"] = str(args.port)
    if args.workers is not None:
        os.environ["CHURN_API_WORKERS"] = str(args.workers)
    settings = _settings_or_exit()  # after the flags: a flag is a setting too
    serve(args.host or settings.host, settings.port, settings.workers, settings.log_level)


if __name__ == "__main__":
    main()
