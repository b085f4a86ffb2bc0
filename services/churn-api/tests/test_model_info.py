"""GET /v1/model: the serving model, its contract and the lineage published beside it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from churn_api.app import create_app
from churn_api.contract import feature_contract
from churn_api.model_info import lineage_uri
from litestar.testing import TestClient
from service_testing import make_settings, wait_for, wait_loaded


def _published(tmp_path: Path, model_path: Path, sha256: str) -> Path:
    """The artifact under its content address, as the pipeline publishes it."""
    target = tmp_path / "churn-model" / "sha256" / f"{sha256}.onnx"
    target.parent.mkdir(parents=True)
    shutil.copy(model_path, target)
    return target


def _describe(settings: Any) -> dict[str, Any]:
    with TestClient(app=create_app(settings)) as client:
        assert wait_loaded(client).status_code == 200
        wait_for(client.app.state.model_info.done.is_set, "the lineage read")
        body: dict[str, Any] = client.get("/v1/model").json()
        return body


def test_the_model_route_answers_version_digest_contract_and_lineage(
    tmp_path: Path, model_path: Path, model_sha256: str
) -> None:
    artifact = _published(tmp_path, model_path, model_sha256)
    record = {
        "schema": "churn-lineage/v1",
        "artifact": {"sha256": model_sha256, "uri": artifact.as_uri()},
        "code": {"git_commit": "a" * 40},
        "data": {"uri": "s3://churn-dev-data/x.parquet", "sha256": "d" * 64, "version_id": "v1"},
    }
    Path(str(lineage_uri(artifact.as_uri())).removeprefix("file://")).write_text(json.dumps(record))
    body = _describe(make_settings(artifact, model_sha256, model_version="4"))
    assert body["version"] == "4"
    assert body["sha256"] == model_sha256
    assert body["uri"] == artifact.as_uri()
    assert body["contract"] == feature_contract()
    assert body["lineage"] == record
    assert body["shadow"] is None


@pytest.mark.parametrize(
    "content",
    ['{"artifact": {"sha256": "' + "b" * 64 + '"}}', "not json", "[1, 2]", None],
    ids=["another-artifact", "not-json", "not-an-object", "missing"],
)
def test_a_lineage_that_does_not_describe_the_artifact_is_null_and_the_model_serves(
    tmp_path: Path, model_path: Path, model_sha256: str, content: str | None
) -> None:
    artifact = _published(tmp_path, model_path, model_sha256)
    if content is not None:
        Path(str(lineage_uri(artifact.as_uri())).removeprefix("file://")).write_text(content)
    body = _describe(make_settings(artifact, model_sha256))
    assert body["lineage"] is None
    assert body["sha256"] == model_sha256


def test_the_model_route_is_503_until_a_model_serves(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "missing.onnx", "c" * 64)
    with TestClient(app=create_app(settings)) as client:
        wait_loaded(client)
        answer = client.get("/v1/model")
    assert answer.status_code == 503
    assert answer.json()["error"] == "not_ready"
