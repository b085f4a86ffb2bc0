"""Helpers for tests against the real PostgreSQL: a throwaway database each, and a cuttable link.

``CHURN_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
names the server. Each test gets its own database ``churn_<purpose>_<uuid8>``,
dropped afterwards, so tests on one server never meet. Without a server the
tests skip saying why, except under ``CI=true``, where they fail.

``TcpLink`` is a loopback TCP relay in front of that server: ``cut()`` closes
every connection and refuses new ones, ``restore()`` lets them through again;
the tests see exactly what a stopped and restarted database looks like to a
client, without stopping a server other test runs use.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

__all__ = [
    "POSTGRES_URL",
    "STORE_BACKENDS",
    "TcpLink",
    "postgres_database",
    "store_database",
    "with_host",
]

POSTGRES_URL = os.environ.get(
    "CHURN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# The two stores every store-reading test runs against.
STORE_BACKENDS = ("postgresql", "sqlite")


def with_host(url: str, *, database: str | None = None, port: int | None = None) -> str:
    """``url`` with another database and/or port."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if port is not None:
        host = parts.hostname or "127.0.0.1"
        user = f"{parts.username}@" if parts.username else ""
        netloc = f"{user}{host}:{port}"
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


@contextmanager
def postgres_database(purpose: str) -> Iterator[str]:
    """Create ``churn_<purpose>_<uuid8>``; yield its URL; drop it."""
    name = f"churn_{purpose}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required under CI: {exc}")
        pytest.skip(f"not run: no PostgreSQL at {POSTGRES_URL} ({exc})")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield with_host(POSTGRES_URL, database=name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def store_database(backend: str, purpose: str, directory: Path) -> Iterator[str]:
    """A throwaway store's URL: a database as ``postgres_database`` makes, or an SQLite file."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'predictions.db'}"
        return
    with postgres_database(purpose) as url:
        yield url


class TcpLink:
    """A relay 127.0.0.1:<port> -> target that can be cut and restored."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._up = True
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=3)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with self._lock:
                    self._sockets.discard(s)
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones: the database is gone."""
        self._up = False
        with self._lock:
            sockets, self._sockets = set(self._sockets), set()
        for s in sockets:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        """Let connections through again: the database is back."""
        self._up = True

    def close(self) -> None:
        """Stop listening and drop everything."""
        self.cut()
        self._listener.close()
