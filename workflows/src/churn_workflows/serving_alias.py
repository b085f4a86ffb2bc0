"""Move the MLflow alias ``serving-<env>`` to the version Git pins: the registry agrees with Git.

Git is the source of truth (``overlays/<env>/model.yaml``); this makes MLflow
show it. Steps, per environment: read the pin (from GitHub when configured,
else a local repository), check that the pinned version exists and holds the
pinned artifact (its ``churn.onnx_sha256`` tag is the pin's sha256: a registry
that disagrees with Git is an error naming both), then point the alias at it.
The bootstrap pin removes the alias: nothing serves. Running it again changes
nothing, so the post-merge job may run on every push.

One registry for every environment: versions are created once, in the MLflow
of the environment that trains (``dev``), and staging and prod pins name the
same versions, so ``serving-dev``, ``serving-staging`` and ``serving-prod`` all
live in that registry.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from churn_workflows import PipelineError, exit_code
from churn_workflows.pin import ENVIRONMENTS, Pin
from churn_workflows.steps.promote import read_target_pin
from churn_workflows.tracking import REGISTERED_MODEL, MlflowClient, connect, mlflow

__all__ = ["alias_name", "main", "sync_alias"]


def alias_name(environment: str) -> str:
    """The alias that says which version serves in ``environment``."""
    return f"serving-{environment}"


def _aliased(client: MlflowClient, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(REGISTERED_MODEL, alias).version)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise


def sync_alias(client: MlflowClient, environment: str, pin: Pin) -> str:
    """Point ``serving-<environment>`` at ``pin``'s version; say what was done."""
    alias = alias_name(environment)
    current = _aliased(client, alias)
    if pin.is_bootstrap:
        if current is None:
            return f"{alias}: unchanged (nothing serves)"
        client.delete_registered_model_alias(REGISTERED_MODEL, alias)
        return f"{alias}: removed from version {current} (the pin is the bootstrap pin)"
    try:
        version = client.get_model_version(REGISTERED_MODEL, pin.version)
    except mlflow.exceptions.MlflowException:
        raise PipelineError(
            f"{environment} pins {REGISTERED_MODEL} version {pin.version}, "
            "which this registry does not have"
        ) from None
    registered = version.tags.get("churn.onnx_sha256")
    if registered != pin.sha256:
        raise PipelineError(
            f"{environment} pins version {pin.version} with sha256 {pin.sha256}, but the "
            f"registry's version {pin.version} holds {registered}"
        )
    if current == pin.version:
        return f"{alias}: unchanged (version {pin.version})"
    client.set_registered_model_alias(REGISTERED_MODEL, alias, pin.version)
    moved = f"from version {current} " if current else ""
    return f"{alias}: moved {moved}to version {pin.version}"


def main(argv: Sequence[str] | None = None) -> int:
    """Sync the aliases of the given environments (all by default) with their pins."""
    parser = argparse.ArgumentParser(prog="churn-workflows serving-alias", description=__doc__)
    parser.add_argument("--environment", action="append", choices=ENVIRONMENTS)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--repo", type=Path, default=None, help="local repository (no GitHub)")
    parser.add_argument("--base", default=None, help="branch whose pins count (default: default)")
    args = parser.parse_args(argv)
    try:
        connect(args.tracking_uri)
        client = MlflowClient()
        for environment in args.environment or ENVIRONMENTS:
            pin = read_target_pin(environment, repo=args.repo, base=args.base)
            print(sync_alias(client, environment, pin))
    except PipelineError as exc:
        print(f"serving-alias: {exc}", file=sys.stderr)
        return exit_code(exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
