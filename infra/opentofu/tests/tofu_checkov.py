"""Run checkov on the OpenTofu roots and read its verdict.

One process per root, the three in parallel: when several roots are scanned in one run,
checkov reports a shared module's resources only under the first root that calls it, which
would hide each root's own verdict.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass

import yaml
from tofu_hcl import INFRA, REPO, ROOTS

__all__ = [
    "CHECKOV_CONFIG",
    "CheckovError",
    "CheckovReport",
    "checkov_command",
    "checkov_skips",
    "run_checkov",
]

CHECKOV_CONFIG = INFRA / ".checkov.yaml"


class CheckovError(RuntimeError):
    """checkov did not produce a report."""


@dataclass
class CheckovReport:
    """checkov's verdict on one root: counts and the failed checks, with where they are."""

    root: str
    passed: int
    failed: int
    skipped: int
    parsing_errors: int
    failures: list[str]


def checkov_command() -> list[str] | None:
    """The checkov argv from $CHECKOV (the Makefile pins it), or None when unset."""
    command = os.environ.get("CHECKOV")
    return shlex.split(command) if command else None


def run_checkov(command: list[str]) -> dict[str, CheckovReport]:
    """Scan envs/<root> for each root, in parallel, and parse the JSON reports."""
    procs = {
        env: subprocess.Popen(
            [
                *command,
                "--directory",
                str(INFRA / "envs" / env),
                "--config-file",
                str(CHECKOV_CONFIG),
                "--skip-download",
                "--output",
                "json",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for env in ROOTS
    }
    reports: dict[str, CheckovReport] = {}
    for env, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        try:
            raw = json.loads(out)
        except json.JSONDecodeError as exc:
            raise CheckovError(
                f"checkov on envs/{env} printed no JSON (exit {proc.returncode}): {err[-2000:]}"
            ) from exc
        report = raw[0] if isinstance(raw, list) else raw
        if "summary" not in report:
            raise CheckovError(f"checkov on envs/{env} found nothing to scan: {str(raw)[:500]}")
        summary = report["summary"]
        failures = [
            f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
            for c in report["results"].get("failed_checks", [])
        ]
        reports[env] = CheckovReport(
            root=f"envs/{env}",
            passed=summary["passed"],
            failed=summary["failed"],
            skipped=summary["skipped"],
            parsing_errors=summary["parsing_errors"],
            failures=failures,
        )
    return reports


def checkov_skips() -> list[str]:
    """The check IDs .checkov.yaml skips (they never run, so checkov does not count them)."""
    settings = yaml.safe_load(CHECKOV_CONFIG.read_text(encoding="utf-8"))
    return [str(s) for s in settings.get("skip-check", [])]
