"""A real, tiny churn model for tests anywhere in the repository.

Other areas' tests (monitoring starts the real service with it) load this file
by path, so it works without being on ``sys.path``::

    spec = importlib.util.spec_from_file_location("fixture_model", PATH)
    fixture_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture_model)
    sha256 = fixture_model.build_fixture_model(tmp_path / "model.onnx")

Then start the service with ``MODEL_URI=(tmp_path / "model.onnx").as_uri()``,
``MODEL_SHA256=sha256`` and any ``MODEL_VERSION``. ``server_env`` builds that
environment. The model is a scikit-learn logistic pipeline converted with
skl2onnx (dev dependencies), seeded, with the metadata docs/contracts.md names.
"""

from __future__ import annotations

from pathlib import Path

from churn_api.fixture import build_fixture_model as _build

__all__ = ["build_fixture_model", "server_env"]


def build_fixture_model(path: Path, version: str = "1") -> str:
    """Write the fixture ONNX model to ``path``; return its sha256."""
    return _build(Path(path), version=version)


def server_env(path: Path, sha256: str, version: str = "1", port: int = 8000) -> dict[str, str]:
    """The environment variables that make ``churn-api serve`` serve the model at ``path``."""
    return {
        "MODEL_URI": Path(path).resolve().as_uri(),
        "MODEL_SHA256": sha256,
        "MODEL_VERSION": version,
        "CHURN_API_HOST": "127.0.0.1",
        "CHURN_API_PORT": str(port),
    }
