"""The disaster-recovery drill's logic (infra/opentofu/scripts/dr_drill.py).

AWS cannot be reached here. moto's in-process fake of AWS (`fake_aws`) stands in for RDS,
Secrets Manager and S3: the drill runs its real boto3 calls against it. The waits use a fake
clock; where S3 needs two versions at distinct times, the test waits for the clock's second
to turn (S3 reports LastModified to the second).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tofu_hcl import INFRA

SCRIPT = INFRA / "scripts" / "dr_drill.py"
REGION = "eu-west-1"
PREFIX = "churn-staging"


@pytest.fixture(scope="module")
def drill() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dr_drill", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dr_drill"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's fake AWS, with throwaway credentials so nothing real is ever called."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "fake",
        "AWS_SECRET_ACCESS_KEY": "fake",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


class FakeClock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _database(rds: Any, secrets: Any) -> None:
    """What modules/database creates, in the fake: the instance and its two secrets."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    group = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    rds.create_db_subnet_group(
        DBSubnetGroupName=f"{PREFIX}-mlflow", DBSubnetGroupDescription="db", SubnetIds=subnets
    )
    rds.create_db_instance(
        DBInstanceIdentifier=f"{PREFIX}-mlflow",
        Engine="postgres",
        EngineVersion="17",
        DBInstanceClass="db.t4g.small",
        MasterUsername="mlflow",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
        DBSubnetGroupName=f"{PREFIX}-mlflow",
        VpcSecurityGroupIds=[group],
        BackupRetentionPeriod=7,
    )
    host = rds.describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-mlflow")["DBInstances"][0][
        "Endpoint"
    ]["Address"]
    for purpose, dbname in (("mlflow", "mlflow"), ("predictions", "predictions")):
        secrets.create_secret(
            Name=f"{PREFIX}/{purpose}/postgres",
            SecretString=json.dumps(
                {
                    "username": "mlflow",
                    "password": "x",
                    "host": host,
                    "port": 5432,
                    "dbname": dbname,
                }
            ),
        )


# ----------------------------------------------------------------------------- times and names


def test_times_need_a_zone(drill: ModuleType) -> None:
    moment = drill.parse_time("2026-01-05T10:00:00Z")
    assert moment == dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)
    with pytest.raises(drill.DrillError, match="time zone"):
        drill.parse_time("2026-01-05T10:00:00")
    with pytest.raises(drill.DrillError, match="not an ISO 8601 time"):
        drill.parse_time("yesterday")


def test_the_restored_instance_is_named_by_its_time(drill: ModuleType) -> None:
    moment = drill.parse_time("2026-01-05T10:07:00Z")
    assert drill.restored_identifier(PREFIX, moment) == f"{PREFIX}-mlflow-restore-202601051007"
    with pytest.raises(drill.DrillError, match="63"):
        drill.restored_identifier("p" * 40, moment)


# ----------------------------------------------------------------------------- database


def test_the_database_is_restored_as_a_new_instance_and_the_secrets_follow(
    drill: ModuleType, fake_aws: None
) -> None:
    rds = boto3.client("rds", region_name=REGION)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    _database(rds, secrets)
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    clock = FakeClock()
    restored = drill.restore_database(rds, PREFIX, moment, clock=clock, sleep=clock.sleep)
    assert restored.identifier == drill.restored_identifier(PREFIX, moment)
    (instance,) = rds.describe_db_instances(DBInstanceIdentifier=restored.identifier)["DBInstances"]
    assert instance["DBSubnetGroup"]["DBSubnetGroupName"] == f"{PREFIX}-mlflow"
    original = rds.describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-mlflow")["DBInstances"]
    assert original[0]["DBInstanceStatus"] == "available", "the source is left as it was"

    again = drill.restore_database(rds, PREFIX, moment, clock=clock, sleep=clock.sleep)
    assert again == restored, "run again for the same time, the restore is reused"
    changed = drill.cut_over(secrets, PREFIX, restored)
    assert changed == [f"{PREFIX}/mlflow/postgres", f"{PREFIX}/predictions/postgres"]
    for secret_id in changed:
        value = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
        assert value["host"] == restored.address
        assert value["username"] == "mlflow", "only the host and port change"
        previous = secrets.get_secret_value(SecretId=secret_id, VersionStage="AWSPREVIOUS")
        assert json.loads(previous["SecretString"])["host"] != restored.address


def test_a_wrong_prefix_names_the_missing_instance(drill: ModuleType, fake_aws: None) -> None:
    rds = boto3.client("rds", region_name=REGION)
    with pytest.raises(drill.DrillError, match="no RDS instance acme-mlflow"):
        drill.restore_database(rds, "acme", dt.datetime.now(dt.UTC))


def test_cut_over_refuses_a_secret_it_cannot_read(drill: ModuleType, fake_aws: None) -> None:
    secrets = boto3.client("secretsmanager", region_name=REGION)
    restored = drill.RestoredDatabase("x", "x.example", 5432)
    with pytest.raises(drill.DrillError, match="apply the environment first"):
        drill.cut_over(secrets, PREFIX, restored)
    secrets.create_secret(Name=f"{PREFIX}/mlflow/postgres", SecretString="not json")
    with pytest.raises(drill.DrillError, match="not the JSON"):
        drill.cut_over(secrets, PREFIX, restored)


class FakeRds:
    """A thin fake of the RDS client for the one thing moto does not do: a restore that
    never becomes available, or fails."""

    class exceptions:
        class DBInstanceNotFoundFault(Exception):
            pass

    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses
        self.restored: dict[str, Any] = {}

    def describe_db_instances(
        self, DBInstanceIdentifier: str = "", Filters: Any = None
    ) -> dict[str, Any]:
        if Filters is not None:
            return {"DBInstances": []}
        if DBInstanceIdentifier.endswith("-mlflow"):
            source = {
                "DBSubnetGroup": {"DBSubnetGroupName": "g"},
                "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-1"}],
                "DBInstanceClass": "db.t4g.small",
                "LatestRestorableTime": dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC),
            }
            return {"DBInstances": [source]}
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"DBInstances": [{"DBInstanceStatus": status}]}

    def restore_db_instance_to_point_in_time(self, **kwargs: Any) -> None:
        self.restored = kwargs


def test_a_restore_that_fails_or_hangs_is_reported(drill: ModuleType) -> None:
    moment = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    clock = FakeClock()
    with pytest.raises(drill.DrillError, match="ended incompatible-restore"):
        drill.restore_database(
            FakeRds(["creating", "incompatible-restore"]),
            PREFIX,
            moment,
            clock=clock,
            sleep=clock.sleep,
        )
    with pytest.raises(drill.DrillError, match="still creating after 120s"):
        drill.restore_database(
            FakeRds(["creating"]), PREFIX, moment, timeout=120, clock=clock, sleep=clock.sleep
        )


def test_a_time_after_the_latest_restorable_one_is_refused(drill: ModuleType) -> None:
    fake = FakeRds(["available"])
    with pytest.raises(drill.DrillError, match="after the latest restorable time"):
        drill.restore_database(fake, PREFIX, dt.datetime(2026, 1, 5, 11, tzinfo=dt.UTC))
    assert fake.restored == {}, "nothing is restored"


# ----------------------------------------------------------------------------- objects


def _next_second() -> dt.datetime:
    """Wait until the wall clock's second turns; S3 timestamps have one-second resolution."""
    start = int(time.time())
    deadline = time.monotonic() + 5
    while int(time.time()) == start:
        assert time.monotonic() < deadline, "the clock did not move"
        time.sleep(0.05)
    return dt.datetime.now(dt.UTC)


def test_an_overwritten_model_is_restored_to_the_version_of_that_time(
    drill: ModuleType, fake_aws: None
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    bucket, key = f"{PREFIX}-models", "churn-model/sha256/abc/model.onnx"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    good = b"the model that was promoted"
    s3.put_object(Bucket=bucket, Key=key, Body=good)
    # Just before the second the overwrite lands in: the good version is current then.
    as_of = _next_second().replace(microsecond=0) - dt.timedelta(microseconds=1)
    s3.put_object(Bucket=bucket, Key=key, Body=b"overwritten by mistake")

    with pytest.raises(drill.DrillError, match="sha256"):
        drill.restore_object_version(s3, bucket, key, as_of, hashlib.sha256(b"other").hexdigest())
    version = drill.restore_object_version(s3, bucket, key, as_of, hashlib.sha256(good).hexdigest())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == good
    assert s3.head_object(Bucket=bucket, Key=key)["VersionId"] == version
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    assert len(versions) == 3, "the restore is a new version; history is kept"


def test_a_deleted_or_not_yet_written_object_is_named(drill: ModuleType, fake_aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    bucket, key = f"{PREFIX}-models", "churn-model/x"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    before = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    with pytest.raises(drill.DrillError, match="had no version"):
        drill.version_as_of(s3, bucket, key, before)
    _next_second()
    s3.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(drill.DrillError, match="was deleted"):
        drill.version_as_of(s3, bucket, key, _next_second())


# ----------------------------------------------------------------------------- cluster and CLI


def test_the_cluster_rebuild_is_apply_then_argo_cd(drill: ModuleType) -> None:
    steps = drill.cluster_runbook("staging")
    assert steps[0] == "tofu -chdir=infra/opentofu/envs/staging init"
    assert steps[1].startswith("tofu -chdir=infra/opentofu/envs/staging apply")
    assert any("wait-argocd" in s for s in steps)
    assert (INFRA / "scripts" / "sandbox.py").is_file(), "the wait it names exists"
    with pytest.raises(drill.DrillError, match="dev, staging or prod"):
        drill.cluster_runbook("qa")


def test_cli_bad_input_is_one_line_and_exit_2(
    drill: ModuleType, fake_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["database", "--name-prefix", PREFIX, "--restore-time", "last tuesday"]
    assert drill.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: not an ISO 8601 time")
    assert "Traceback" not in err
