"""Create the databases that share the environment's RDS instance, before their users start.

OpenTofu makes the instance with one database (`mlflow`); the prediction store (`predictions`)
and the Argo Workflows archive (`argo_workflows`) need their own, and neither OpenTofu's AWS
provider nor the services create them. An Argo CD Sync hook of the argo-workflows app runs
``python -m churn_workflows.databases --url-file <mounted Secret>`` with the instance's login
before the workflow controller starts (manifest: `job()`, written by ``make render``).

Idempotent: a database that exists is left alone, so every sync can run it; two runs at
once are fine too (the loser of a race sees ``DuplicateDatabase``). Exit status 0 when every
database exists afterwards, 1 (one line on stderr naming the problem) otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import errors, sql

from churn_workflows.argo import IMAGE

__all__ = ["DATABASES", "DatabaseError", "ensure_databases", "job", "main"]

DATABASES: Final = ("predictions", "argo_workflows")
# An unquoted PostgreSQL identifier: what the services' URLs can name without escaping.
_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_LOGIN: Final = "postgres-admin"  # the ExternalSecret's target
_MOUNT: Final = "/etc/postgres-admin"
_UID: Final = 10001


class DatabaseError(Exception):
    """The instance cannot be reached, or a database name is not one it can have."""


def ensure_databases(url: str, names: Sequence[str], connect_timeout: int = 10) -> list[str]:
    """Create each database of ``names`` that is missing; return the ones created."""
    wrong = [n for n in names if not _NAME.match(n)]
    if wrong:
        raise DatabaseError(f"not a database name (lower-case letters, digits, _): {wrong}")
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout) as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (list(names),)
            ).fetchall()
            existing = {row[0] for row in rows}
            created = []
            for name in names:
                if name in existing:
                    continue
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                except errors.DuplicateDatabase:
                    continue  # another run made it in between
                created.append(name)
            return created
    except psycopg.Error as exc:
        raise DatabaseError(f"PostgreSQL: {str(exc).strip() or type(exc).__name__}") from None


def job() -> dict[str, Any]:
    """The Argo CD Sync hook that runs this module in the argo namespace, before the archive."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "create-databases",
            "namespace": "argo",
            "labels": {"app.kubernetes.io/name": "create-databases"},
            "annotations": {
                # After the ExternalSecret of wave -2, before the workflow controller (wave 0);
                # recreated on every sync, which is harmless: it only creates what is missing.
                "argocd.argoproj.io/hook": "Sync",
                "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
                "argocd.argoproj.io/sync-wave": "-1",
            },
        },
        "spec": {
            "backoffLimit": 6,
            "activeDeadlineSeconds": 900,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "create-databases"}},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": _UID,
                        "runAsGroup": _UID,
                        "fsGroup": _UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "create-databases",
                            "image": IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["python", "-m", "churn_workflows.databases"],
                            "args": ["--url-file", f"{_MOUNT}/url", *DATABASES],
                            "resources": {
                                "requests": {
                                    "cpu": "50m",
                                    "memory": "128Mi",
                                    "ephemeral-storage": "16Mi",
                                },
                                "limits": {
                                    "cpu": "500m",
                                    "memory": "256Mi",
                                    "ephemeral-storage": "64Mi",
                                },
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "runAsUser": _UID,
                                "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "volumeMounts": [
                                {"name": "postgres-admin", "mountPath": _MOUNT, "readOnly": True}
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "postgres-admin",
                            "secret": {"secretName": _LOGIN, "defaultMode": 0o440},
                        }
                    ],
                },
            },
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Create the missing databases; print what was created as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url-file", type=Path, required=True, help="file holding the login URL")
    parser.add_argument("databases", nargs="*", default=list(DATABASES))
    args = parser.parse_args(argv)
    try:
        url = args.url_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        print(f"--url-file {args.url_file}: cannot read it ({exc})", file=sys.stderr)
        return 1
    try:
        created = ensure_databases(url, args.databases)
    except DatabaseError as exc:
        print(f"create-databases: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"created": created, "databases": list(args.databases)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
