"""Shared fixtures: a real ONNX model built in the test session, apps and real servers.

No network and no committed binaries: the model is fitted and converted here
(scikit-learn + skl2onnx, seeded), once per test worker.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

# The tests import their helpers by name (pytest runs with --import-mode=importlib):
# their own, and the store's PostgreSQL helpers (store_testing) from churn-store's tests.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "libs" / "churn-store" / "tests"))

from churn_api.app import create_app
from churn_api.model import Model, model_from_bytes
from churn_api.settings import Settings
from service_testing import Server, make_settings, start_server


@pytest.fixture(scope="session")
def model_bytes() -> bytes:
    """The fixture model (logistic pipeline), as the artifact's bytes."""
    # Imported here: scikit-learn takes seconds to import, and not every test needs a model.
    from churn_api.fixture import fixture_onnx_bytes  # noqa: PLC0415

    return fixture_onnx_bytes(version="1")


@pytest.fixture(scope="session")
def model_sha256(model_bytes: bytes) -> str:
    return hashlib.sha256(model_bytes).hexdigest()


@pytest.fixture(scope="session")
def model_path(model_bytes: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "model.onnx"
    path.write_bytes(model_bytes)
    return path


@pytest.fixture(scope="session")
def model(model_bytes: bytes, model_sha256: str) -> Model:
    """The fixture model, verified and ready."""
    return model_from_bytes(model_bytes, model_sha256, "1")


@pytest.fixture
def settings(model_path: Path, model_sha256: str) -> Settings:
    return make_settings(model_path, model_sha256)


@pytest.fixture
def client(settings: Settings, model: Model) -> Iterator[TestClient[Any]]:
    """A client on an app that is ready at once with the fixture model."""
    with TestClient(app=create_app(settings, model=model)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def real_server(
    model_path: Path, model_sha256: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A real server process serving the fixture model, capturing into SQLite."""
    store = tmp_path_factory.mktemp("capture") / "predictions.db"
    server = start_server(
        {
            "MODEL_URI": model_path.as_uri(),
            "MODEL_SHA256": model_sha256,
            "MODEL_VERSION": "1",
            "CHURN_CAPTURE_URL": f"sqlite:///{store}",
        }
    )
    yield server
    server.stop()
