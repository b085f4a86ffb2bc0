"""Disaster-recovery drill: restore the database to a point in time, a model artifact to an
earlier version, and a cluster from Git alone (infra/opentofu/README.md, "Disaster recovery").

    dr_drill.py database --name-prefix churn-staging --restore-time 2026-01-05T10:00Z [--cut-over]
    dr_drill.py object --bucket churn-staging-models --key churn-model/... --as-of 2026-01-05T10:00Z
    dr_drill.py cluster --env staging

`database` restores `<prefix>-mlflow` as a new instance `<prefix>-mlflow-restore-<time>` in the
same subnet group and security groups, waits until it is available, and prints its endpoint;
with `--cut-over` it rewrites the `host` of MLflow's and the prediction store's Secrets Manager
entries, so External Secrets hands both the restored instance. `object` makes the version that
was current at `--as-of` the current one again (a copy, so history is kept). `cluster` prints the
commands that rebuild a cluster from Git and what each waits for.

AWS is reached through boto3 clients passed in, so the logic is tested against moto
(infra/opentofu/tests/test_dr_drill.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3

__all__ = [
    "DrillError",
    "RestoredDatabase",
    "cluster_runbook",
    "cut_over",
    "main",
    "parse_time",
    "restore_database",
    "restore_object_version",
    "restored_identifier",
    "version_as_of",
]

# The secrets whose `host` follows the database (modules/database).
SECRET_PURPOSES = ("mlflow", "predictions")


class DrillError(RuntimeError):
    """A drill step could not be done; the message says which and why."""


@dataclass(frozen=True)
class RestoredDatabase:
    """The instance a point-in-time restore created."""

    identifier: str
    address: str
    port: int


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time with a zone (`2026-01-05T10:00:00Z`), as an aware datetime."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DrillError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise DrillError(f"give the time zone (for example {text}Z): {text!r}")
    return moment.astimezone(dt.UTC)


def restored_identifier(name_prefix: str, restore_time: dt.datetime) -> str:
    """`<prefix>-mlflow-restore-<yyyymmddhhmm>`: unique per restore time, within RDS's 63."""
    identifier = f"{name_prefix}-mlflow-restore-{restore_time:%Y%m%d%H%M}"
    if len(identifier) > 63:
        raise DrillError(f"{identifier} is longer than RDS's 63 characters")
    return identifier


# ----------------------------------------------------------------------------- database


def restore_database(
    rds: Any,
    name_prefix: str,
    restore_time: dt.datetime,
    *,
    timeout: float = 3600,
    interval: float = 30,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RestoredDatabase:
    """Restore `<prefix>-mlflow` to `restore_time` as a new instance and wait for it."""
    source_id = f"{name_prefix}-mlflow"
    try:
        (source,) = rds.describe_db_instances(DBInstanceIdentifier=source_id)["DBInstances"]
    except rds.exceptions.DBInstanceNotFoundFault:
        raise DrillError(f"no RDS instance {source_id}: is the name prefix right?") from None
    latest = source.get("LatestRestorableTime")
    if latest is not None and restore_time > latest:
        raise DrillError(
            f"{restore_time:%Y-%m-%dT%H:%M:%SZ} is after the latest restorable time"
            f" {latest:%Y-%m-%dT%H:%M:%SZ} of {source_id}"
        )
    target_id = restored_identifier(name_prefix, restore_time)
    # Run again for the same time (to cut over after checking), the restore is reused.
    existing = rds.describe_db_instances(
        Filters=[{"Name": "db-instance-id", "Values": [target_id]}]
    )
    if not existing["DBInstances"]:
        _restore(rds, source, source_id, target_id, restore_time)
    deadline = clock() + timeout

    while True:
        (target,) = rds.describe_db_instances(DBInstanceIdentifier=target_id)["DBInstances"]
        status = target["DBInstanceStatus"]
        if status == "available":
            endpoint = target["Endpoint"]
            return RestoredDatabase(target_id, endpoint["Address"], int(endpoint["Port"]))
        if status in ("failed", "incompatible-restore", "incompatible-parameters"):
            raise DrillError(f"restore of {target_id} ended {status}")
        if clock() >= deadline:
            raise DrillError(f"{target_id} is still {status} after {timeout:.0f}s")
        print(f"waiting: {target_id} is {status}", flush=True)
        sleep(interval)


def _restore(
    rds: Any, source: dict[str, Any], source_id: str, target_id: str, restore_time: dt.datetime
) -> None:
    """Start the point-in-time restore into the source's network, private and unprotected."""
    rds.restore_db_instance_to_point_in_time(
        SourceDBInstanceIdentifier=source_id,
        TargetDBInstanceIdentifier=target_id,
        RestoreTime=restore_time,
        DBSubnetGroupName=source["DBSubnetGroup"]["DBSubnetGroupName"],
        VpcSecurityGroupIds=[g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]],
        DBInstanceClass=source["DBInstanceClass"],
        MultiAZ=False,
        PubliclyAccessible=False,
        DeletionProtection=False,
        CopyTagsToSnapshot=True,
        Tags=[{"Key": "restored-from", "Value": source_id}],
    )


def cut_over(secrets: Any, name_prefix: str, restored: RestoredDatabase) -> list[str]:
    """Point MLflow's and the prediction store's secrets at the restored instance (a new
    secret version; the old one stays as AWSPREVIOUS). Returns the secrets changed."""
    changed = []
    for purpose in SECRET_PURPOSES:
        secret_id = f"{name_prefix}/{purpose}/postgres"
        try:
            current = secrets.get_secret_value(SecretId=secret_id)["SecretString"]
        except secrets.exceptions.ResourceNotFoundException:
            raise DrillError(f"no secret {secret_id}: apply the environment first") from None
        try:
            value = json.loads(current)
        except json.JSONDecodeError:
            raise DrillError(f"{secret_id} is not the JSON modules/database writes") from None
        if not isinstance(value, dict) or "host" not in value:
            raise DrillError(f"{secret_id} has no host to point elsewhere")
        value.update(host=restored.address, port=restored.port)
        secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps(value))
        changed.append(secret_id)
    return changed


# ----------------------------------------------------------------------------- objects


def version_as_of(s3: Any, bucket: str, key: str, as_of: dt.datetime) -> dict[str, Any]:
    """The version of `key` that was current at `as_of` (not a delete marker)."""
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    entries = [
        {**v, "IsDeleteMarker": False} for v in listing.get("Versions", []) if v["Key"] == key
    ] + [{**m, "IsDeleteMarker": True} for m in listing.get("DeleteMarkers", []) if m["Key"] == key]
    before = [e for e in entries if e["LastModified"] <= as_of]
    if not before:
        raise DrillError(f"s3://{bucket}/{key} had no version at {as_of:%Y-%m-%dT%H:%M:%SZ}")
    then = max(before, key=lambda e: e["LastModified"])
    if then["IsDeleteMarker"]:
        raise DrillError(f"s3://{bucket}/{key} was deleted at {as_of:%Y-%m-%dT%H:%M:%SZ}")
    return then


def restore_object_version(
    s3: Any, bucket: str, key: str, as_of: dt.datetime, expected_sha256: str | None = None
) -> str:
    """Copy the version current at `as_of` over the current one; return the new version id.
    With `expected_sha256` (the pin's), refuse a version whose content differs."""
    then = version_as_of(s3, bucket, key, as_of)
    if expected_sha256 is not None:
        body = s3.get_object(Bucket=bucket, Key=key, VersionId=then["VersionId"])["Body"].read()
        digest = hashlib.sha256(body).hexdigest()
        if digest != expected_sha256:
            raise DrillError(
                f"the version at {as_of:%Y-%m-%dT%H:%M:%SZ} has sha256 {digest},"
                f" not the pin's {expected_sha256}"
            )
    copied = s3.copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": bucket, "Key": key, "VersionId": then["VersionId"]},
    )
    return str(copied["VersionId"])


# ----------------------------------------------------------------------------- cluster


def cluster_runbook(env: str) -> list[str]:
    """The steps that rebuild `env`'s cluster from Git alone, each with what it waits for."""
    if env not in ("dev", "staging", "prod"):
        raise DrillError(f"env must be dev, staging or prod, not {env!r}")
    root = f"infra/opentofu/envs/{env}"
    return [
        f"tofu -chdir={root} init",
        f"tofu -chdir={root} apply"
        "   # waits for EKS (10-12 min), the node group, add-ons and Argo CD (about 25 min)",
        f'aws eks update-kubeconfig --name "$(tofu -chdir={root} output -raw cluster_name)"',
        "python infra/opentofu/scripts/sandbox.py wait-argocd --timeout 1800"
        "   # every Application Synced and Healthy (10-15 min)",
        "kubectl -n churn get rollout churn-api   # Healthy, serving the pinned model",
    ]


# ----------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """Run one drill; a DrillError prints one line and exits 2."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    drills = parser.add_subparsers(dest="drill", required=True)
    database = drills.add_parser("database", help="point-in-time restore as a new instance")
    database.add_argument("--name-prefix", required=True)
    database.add_argument("--restore-time", required=True, help="ISO 8601 with a zone")
    database.add_argument("--cut-over", action="store_true", help="point the secrets at it")
    obj = drills.add_parser("object", help="make an earlier version current again")
    obj.add_argument("--bucket", required=True)
    obj.add_argument("--key", required=True)
    obj.add_argument("--as-of", required=True, help="ISO 8601 with a zone")
    obj.add_argument("--sha256", help="the pin's digest the restored content must have")
    cluster = drills.add_parser("cluster", help="print the rebuild-from-Git steps")
    cluster.add_argument("--env", required=True)
    args = parser.parse_args(argv)
    try:
        if args.drill == "cluster":
            print("\n".join(cluster_runbook(args.env)))
            return 0
        if args.drill == "database":
            restored = restore_database(
                boto3.client("rds"), args.name_prefix, parse_time(args.restore_time)
            )
            print(f"restored {restored.identifier} at {restored.address}:{restored.port}")
            if args.cut_over:
                for secret in cut_over(boto3.client("secretsmanager"), args.name_prefix, restored):
                    print(f"{secret} now points at {restored.identifier}")
        else:
            version = restore_object_version(
                boto3.client("s3"), args.bucket, args.key, parse_time(args.as_of), args.sha256
            )
            print(f"s3://{args.bucket}/{args.key} is current again as version {version}")
    except DrillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
