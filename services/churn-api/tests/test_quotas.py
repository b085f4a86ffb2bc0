"""Per-client quotas: counted in the local Redis (shared by replicas) or per process.

Each test uses its own Redis key namespace and deletes it afterwards. Without a
Redis on 127.0.0.1:6379 the Redis tests skip, saying so, except under CI=true,
where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from churn_api.app import create_app
from churn_api.model import Model
from churn_api.quotas import parse_quota
from litestar.testing import TestClient
from service_testing import VALID_RECORD, free_port, make_settings

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def namespace() -> Iterator[str]:
    """A Redis key namespace of this test's own, removed afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is required under CI: {exc}")
        pytest.skip(f"no Redis at {REDIS_URL} ({exc}); start it to run the quota tests")
    name = f"churn-api-test-{uuid.uuid4().hex[:8]}"
    yield name
    for key in client.scan_iter(f"{name}*"):
        client.delete(key)
    client.close()


def keyed_app(model_path: Path, model_sha256: str, model: Model, **overrides: Any) -> Any:
    settings = make_settings(
        model_path, model_sha256, api_keys=frozenset({"key-a", "key-b"}), **overrides
    )
    return create_app(settings, model=model)


def predict(client: TestClient[Any], key: str) -> Any:
    return client.post("/v1/predict", json=VALID_RECORD, headers={"X-API-Key": key})


def test_one_client_is_throttled_while_another_is_served(
    model_path: Path, model_sha256: str, model: Model, namespace: str
) -> None:
    app = keyed_app(
        model_path,
        model_sha256,
        model,
        quota="3/minute",
        redis_url=REDIS_URL,
        quota_namespace=namespace,
    )
    with TestClient(app=app) as client:
        assert [predict(client, "key-a").status_code for _ in range(3)] == [200, 200, 200]
        throttled = predict(client, "key-a")
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        assert throttled.headers["ratelimit-limit"] == "3"
        assert throttled.json()["error"] == "too_many_requests"
        assert "over its quota" in throttled.json()["detail"][0]["reason"]
        assert predict(client, "key-b").status_code == 200
        # Probes and metrics are never limited.
        for path in ("/healthz", "/readyz", "/metrics") * 3:
            assert client.get(path).status_code == 200
        assert "churn_api_throttled_requests_total 1.0" in client.get("/metrics").text
    redis_client = redis.Redis.from_url(REDIS_URL)
    assert list(redis_client.scan_iter(f"{namespace}*")), "the counters live in Redis"


def test_replicas_share_one_count_through_redis(
    model_path: Path, model_sha256: str, model: Model, namespace: str
) -> None:
    overrides = {"quota": "4/minute", "redis_url": REDIS_URL, "quota_namespace": namespace}
    first = keyed_app(model_path, model_sha256, model, **overrides)
    second = keyed_app(model_path, model_sha256, model, **overrides)
    with TestClient(app=first) as one, TestClient(app=second) as two:
        statuses = [predict(c, "key-a").status_code for c in (one, two, one, two)]
        assert statuses == [200, 200, 200, 200]
        assert predict(one, "key-a").status_code == 429
        assert predict(two, "key-a").status_code == 429
        assert predict(two, "key-b").status_code == 200


def test_without_redis_each_process_counts_alone(
    model_path: Path, model_sha256: str, model: Model
) -> None:
    first = keyed_app(model_path, model_sha256, model, quota="2/minute")
    second = keyed_app(model_path, model_sha256, model, quota="2/minute")
    with TestClient(app=first) as one, TestClient(app=second) as two:
        assert [predict(one, "key-a").status_code for _ in range(3)] == [200, 200, 429]
        assert predict(two, "key-a").status_code == 200


def test_without_keys_the_peer_address_is_the_client(
    model_path: Path, model_sha256: str, model: Model
) -> None:
    app = create_app(make_settings(model_path, model_sha256, quota="2/minute"), model=model)
    with TestClient(app=app) as client:
        statuses = [client.post("/v1/predict", json=VALID_RECORD).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_no_quota_by_default(client: TestClient[Any]) -> None:
    assert {client.post("/v1/predict", json=VALID_RECORD).status_code for _ in range(30)} == {200}


def test_redis_going_away_lets_requests_through(
    model_path: Path, model_sha256: str, model: Model
) -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    app = keyed_app(model_path, model_sha256, model, quota="1/minute", redis_url=unreachable)
    with TestClient(app=app) as client:
        assert [predict(client, "key-a").status_code for _ in range(3)] == [200, 200, 200]
        metrics = client.get("/metrics").text
    assert "churn_api_quota_store_errors_total 6.0" in metrics  # a read and a write each


@pytest.mark.parametrize(
    ("text", "expected"),
    [("100/minute", ("minute", 100)), ("5/second", ("second", 5)), ("1/day", ("day", 1))],
)
def test_parse_quota(text: str, expected: tuple[str, int]) -> None:
    assert parse_quota(text) == expected


def test_parse_quota_refuses_an_unknown_period() -> None:
    with pytest.raises(ValueError, match="the period must be one of"):
        parse_quota("5/fortnight")
