"""The shadow model: verified like the primary, scored after the response, never in charge."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from churn_api.app import create_app
from churn_api.model import Model
from churn_api.schemas import PredictRequest
from churn_api.settings import SettingsError, load_settings
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from service_testing import VALID_RECORD, make_settings, wait_for, wait_loaded


@pytest.fixture(scope="module")
def tree_path(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A second, different model (a tree ensemble): the challenger."""
    from churn_api.fixture import build_fixture_model  # noqa: PLC0415 - slow import

    path = tmp_path_factory.mktemp("shadow") / "tree.onnx"
    return path, build_fixture_model(path, version="2", kind="tree")


def _samples(text: str) -> dict[str, float]:
    return {
        sample.name
        + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _shadow_settings(
    model_path: Path, model_sha256: str, uri: str, sha256: str, version: str = "2"
) -> Any:
    return make_settings(
        model_path,
        model_sha256,
        shadow_model_uri=uri,
        shadow_model_sha256=sha256,
        shadow_model_version=version,
    )


@pytest.fixture
def shadowed(
    model_path: Path, model_sha256: str, tree_path: tuple[Path, str]
) -> Iterator[TestClient[Any]]:
    path, sha = tree_path
    settings = _shadow_settings(model_path, model_sha256, path.as_uri(), sha)
    with TestClient(app=create_app(settings)) as client:
        assert wait_loaded(client).status_code == 200
        wait_for(lambda: client.get("/v1/model").json()["shadow"]["ready"], "the shadow to load")
        yield client


def test_a_shadow_scores_beside_the_primary_without_changing_the_answer(
    shadowed: TestClient[Any], model: Model, tree_path: tuple[Path, str]
) -> None:
    answer = shadowed.post("/v1/predict", json=VALID_RECORD).json()
    primary = model.probability(msgspec.convert(VALID_RECORD, PredictRequest))
    assert answer["probability"] == pytest.approx(primary, abs=1e-12)
    assert answer["model_version"] == "1"
    batch = shadowed.post("/v1/predict/batch", json={"records": [VALID_RECORD] * 4})
    assert [p["model_version"] for p in batch.json()["predictions"]] == ["1"] * 4
    metrics = _samples(shadowed.get("/metrics").text)
    assert metrics["churn_api_shadow_ready"] == 1.0
    assert metrics["churn_api_shadow_predictions_total"] == 5.0
    assert metrics["churn_api_shadow_probability_delta_count"] == 1.0
    assert metrics["churn_api_shadow_errors_total"] == 0.0
    # Only the primary's version appears in the prediction metrics.
    assert not [k for k in metrics if k.startswith("churn_api_predictions") and "=2," in k]
    described = shadowed.get("/v1/model").json()
    assert described["version"] == "1"
    assert described["shadow"]["version"] == "2"
    assert described["shadow"]["sha256"] == tree_path[1]
    assert described["shadow"]["reason"] is None


def test_a_refused_shadow_is_a_metric_and_a_log_line_and_the_service_stays_ready(
    model_path: Path,
    model_sha256: str,
    tree_path: tuple[Path, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, _sha = tree_path
    settings = _shadow_settings(model_path, model_sha256, path.as_uri(), "f" * 64)
    with (
        caplog.at_level(logging.WARNING, logger="churn_api"),
        TestClient(app=create_app(settings)) as client,
    ):
        assert wait_loaded(client).status_code == 200
        wait_for(
            lambda: client.get("/v1/model").json()["shadow"]["reason"] != "loading",
            "the shadow's refusal",
        )
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/predict", json=VALID_RECORD).status_code == 200
        metrics = _samples(client.get("/metrics").text)
        shadow = client.get("/v1/model").json()["shadow"]
    assert metrics["churn_api_shadow_load_failures_total{reason=digest_mismatch}"] == 1.0
    assert metrics["churn_api_shadow_ready"] == 0.0
    assert metrics["churn_api_shadow_predictions_total"] == 0.0
    assert shadow["ready"] is False
    assert shadow["reason"] == "digest_mismatch"
    refusals = [
        getattr(r, "fields", {}) for r in caplog.records if r.getMessage() == "shadow_refused"
    ]
    assert len(refusals) == 1
    assert refusals[0]["reason"] == "digest_mismatch"
    assert refusals[0]["shadow_version"] == "2"
    # The primary's refusal count is untouched: only the shadow was refused.
    assert metrics["churn_api_model_load_failures_total{reason=digest_mismatch}"] == 0.0


def test_a_shadow_that_fails_to_score_changes_nothing(shadowed: TestClient[Any]) -> None:
    state = shadowed.app.state.service
    assert state.shadow is not None
    assert state.shadow.model is not None

    class Broken:
        threshold = 0.5

        def probability(self, record: Any) -> float:
            raise RuntimeError("the shadow broke")

        def probabilities(self, records: Any) -> Any:
            raise RuntimeError("the shadow broke")

    state.shadow.model = Broken()
    assert shadowed.post("/v1/predict", json=VALID_RECORD).status_code == 200
    assert (
        shadowed.post("/v1/predict/batch", json={"records": [VALID_RECORD] * 3}).status_code == 200
    )
    metrics = _samples(shadowed.get("/metrics").text)
    assert metrics["churn_api_shadow_errors_total"] == 4.0


def test_the_shadow_pin_needs_all_three_fields(model_sha256: str) -> None:
    base = {"MODEL_URI": "file:///m.onnx", "MODEL_SHA256": model_sha256, "MODEL_VERSION": "1"}
    assert load_settings(base).shadow_model_uri is None
    # overlays/<env>/shadow.yaml pins none with three empty values.
    empty = {"SHADOW_MODEL_URI": "", "SHADOW_MODEL_SHA256": "", "SHADOW_MODEL_VERSION": ""}
    assert load_settings({**base, **empty}).shadow_model_uri is None
    with pytest.raises(SettingsError, match="missing SHADOW_MODEL_SHA256, SHADOW_MODEL_VERSION"):
        load_settings({**base, "SHADOW_MODEL_URI": "file:///s.onnx"})
    with pytest.raises(SettingsError, match="SHADOW_MODEL_SHA256='abc'"):
        load_settings(
            {
                **base,
                "SHADOW_MODEL_URI": "file:///s.onnx",
                "SHADOW_MODEL_SHA256": "abc",
                "SHADOW_MODEL_VERSION": "2",
            }
        )
    digest = hashlib.sha256(b"x").hexdigest()
    full = load_settings(
        {
            **base,
            "SHADOW_MODEL_URI": "file:///s.onnx",
            "SHADOW_MODEL_SHA256": digest,
            "SHADOW_MODEL_VERSION": "2",
        }
    )
    assert (full.shadow_model_uri, full.shadow_model_sha256, full.shadow_model_version) == (
        "file:///s.onnx",
        digest,
        "2",
    )
