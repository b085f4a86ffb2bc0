"""The fixture model, as other areas' tests use it: tests/fixture_model.py loaded by path."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from churn_api.contract import CONTRACT_METADATA_KEY, LINEAGE_METADATA_KEYS, feature_contract_json
from churn_api.model import model_from_bytes
from churn_api.settings import load_settings

HELPER = Path(__file__).with_name("fixture_model.py")


def test_the_helper_loads_by_path_and_builds_a_servable_model(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("fixture_model_by_path", HELPER)
    assert spec is not None
    assert spec.loader is not None
    fixture_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture_model)

    path = tmp_path / "nested" / "model.onnx"
    sha256 = fixture_model.build_fixture_model(path, version="4")
    data = path.read_bytes()
    assert sha256 == hashlib.sha256(data).hexdigest()
    model = model_from_bytes(data, sha256, "4")
    assert model.metadata[CONTRACT_METADATA_KEY] == feature_contract_json()
    assert set(LINEAGE_METADATA_KEYS) <= set(model.metadata)
    assert model.metadata["churn.model_version"] == "4"

    env = fixture_model.server_env(path, sha256, version="4", port=8123)
    settings = load_settings(env)
    assert (settings.model_uri, settings.model_sha256, settings.port) == (
        path.resolve().as_uri(),
        sha256,
        8123,
    )


def test_the_fixture_is_reproducible(model_bytes: bytes) -> None:
    from churn_api.fixture import fixture_onnx_bytes  # noqa: PLC0415

    assert fixture_onnx_bytes(version="1") == model_bytes
