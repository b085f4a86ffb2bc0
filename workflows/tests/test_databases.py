"""The create-databases hook against a real PostgreSQL: creates what is missing, only that.

Each test names its databases ``churn_dbs_<uuid8>_*`` and drops them afterwards; the shared
databases are never touched. No PostgreSQL: skipped saying why, except under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from churn_workflows.databases import DATABASES, DatabaseError, ensure_databases, job, main

POSTGRES_URL = os.environ.get(
    "CHURN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def databases_named(admin: psycopg.Connection, prefix: str) -> set[str]:
    rows = admin.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)
    ).fetchall()
    return {row[0] for row in rows}


@pytest.fixture
def prefix() -> Iterator[str]:
    """A unique name prefix; every database under it is dropped afterwards."""
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required under CI: {exc}")
        pytest.skip(f"not run: no PostgreSQL at {POSTGRES_URL} ({exc})")
    name = f"churn_dbs_{uuid.uuid4().hex[:8]}_"
    with admin:
        try:
            yield name
        finally:
            for database in databases_named(admin, name):
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_creates_the_missing_databases_once(prefix: str) -> None:
    names = [f"{prefix}predictions", f"{prefix}argo_workflows"]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{names[1]}"')
        assert ensure_databases(POSTGRES_URL, names) == [names[0]]
        assert databases_named(admin, prefix) == set(names)
        # Every sync runs it again: nothing left to create, nothing fails.
        assert ensure_databases(POSTGRES_URL, names) == []
        assert databases_named(admin, prefix) == set(names)


def test_the_command_reads_the_url_from_the_mounted_secret(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "url"
    secret.write_text(POSTGRES_URL + "\n")
    name = f"{prefix}store"
    assert main(["--url-file", str(secret), name]) == 0
    assert json.loads(capsys.readouterr().out) == {"created": [name], "databases": [name]}
    assert main(["--url-file", str(secret), name]) == 0
    assert json.loads(capsys.readouterr().out)["created"] == []


def test_a_wrong_name_is_refused_before_anything_is_created(prefix: str) -> None:
    good = f"{prefix}good"
    with pytest.raises(DatabaseError, match="not a database name"):
        ensure_databases(POSTGRES_URL, [good, 'x"; DROP DATABASE postgres; --'])
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        assert databases_named(admin, prefix) == set()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_an_unreachable_instance_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(DatabaseError, match="PostgreSQL"):
        ensure_databases(url, ["churn_unreached"], connect_timeout=2)
    secret = tmp_path / "url"
    secret.write_text(url)
    assert main(["--url-file", str(secret), "churn_unreached"]) == 1
    assert "create-databases: PostgreSQL" in capsys.readouterr().err
    assert main(["--url-file", str(tmp_path / "absent")]) == 1
    assert "cannot read it" in capsys.readouterr().err


def test_the_hook_creates_the_databases_the_services_use() -> None:
    container = job()["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-len(DATABASES) :] == list(DATABASES)
    assert set(DATABASES) == {"predictions", "argo_workflows"}
