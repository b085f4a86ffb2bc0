"""schemathesis with every check, from outside, over the OpenAPI document a real server serves.

``st run --checks all`` against ``churn-api serve``: positive and negative cases
for every operation (examples, coverage and fuzzing phases), seeded and
deterministic so a failure reproduces. A batch over ``maxItems`` is also over the
body limit, so 413 counts as a rejection of negative data (schemathesis' default
list of rejection statuses lacks it). The server's batch limit is small, so no
schema-valid body can reach the body limit.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_testing import VALID_RECORD, Server, start_server

SCHEMATHESIS = str(Path(sys.executable).with_name("st"))
CONFIG = """\
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]

# JSON Schema cannot say "observed_at is not in the future" (the document says it in words):
# a generated record may be dated later than now, and is a 422 naming it.
[[operations]]
include-path = "/v1/feedback"
checks.positive_data_acceptance.expected-statuses = [202, 422]
"""


@pytest.fixture(scope="module")
def server(
    model_path: Path, model_sha256: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    store = tmp_path_factory.mktemp("schemathesis") / "predictions.db"
    served = start_server(
        {
            "MODEL_URI": model_path.as_uri(),
            "CHURN_CAPTURE_URL": f"sqlite:///{store}",  # POST /v1/feedback answers from it
            "MODEL_SHA256": model_sha256,
            "MODEL_VERSION": "1",
            "CHURN_API_MAX_BATCH": "50",
            "CHURN_API_LOG_LEVEL": "WARNING",  # nobody reads the server's pipe during the run
        }
    )
    yield served
    served.stop()


def integral_numbers_accepted(url: str) -> bool:
    """Whether ``62.0`` passes where the schema says integer (JSON Schema says it is one)."""
    record = {**VALID_RECORD, "support_tickets": 62.0}
    return httpx.post(f"{url}/v1/predict", json=record, timeout=10).status_code == 200


def test_every_schemathesis_check_passes(server: Server, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    # JSON Schema counts 62.0 as an integer; the service must accept it (positive_data_acceptance).
    assert integral_numbers_accepted(server.url)
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(config),
        "run",
        f"{server.url}/schema/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "25",
        "--seed",
        "20261130",
        "--generation-deterministic",
        "--no-color",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    tail = "\n".join(result.stdout.splitlines()[-60:])
    assert result.returncode == 0, f"schemathesis found failures:\n{tail}\n{result.stderr[-2000:]}"
    assert "Tested: 6" in result.stdout, tail
