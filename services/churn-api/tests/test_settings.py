"""Settings: the environment into a frozen Struct, every mistake named."""

from __future__ import annotations

import re

import msgspec
import pytest
from churn_api.settings import Settings, SettingsError, load_settings

SHA = "a" * 64
PIN = {
    "MODEL_URI": "s3://churn-dev-models/churn-model/sha256/x.onnx",
    "MODEL_SHA256": SHA,
    "MODEL_VERSION": "3",
}


def test_defaults_follow_the_contract() -> None:
    settings = load_settings(PIN)
    assert settings == Settings(
        model_uri=PIN["MODEL_URI"],
        model_sha256=SHA,
        model_version="3",
        api_keys=frozenset(),
        max_batch=10_000,
        max_body_bytes=8_388_608,
        host="0.0.0.0",
        port=8000,
        workers=1,
        log_level="INFO",
    )


def test_every_variable_is_read() -> None:
    settings = load_settings(
        {
            **PIN,
            "CHURN_API_KEYS": " k1, k2 ,,",
            "CHURN_API_MAX_BATCH": "50",
            "CHURN_API_MAX_BODY_BYTES": "4096",
            "CHURN_API_HOST": "127.0.0.1",
            "CHURN_API_PORT": "9000",
            "CHURN_API_WORKERS": "2",
            "CHURN_API_LOG_LEVEL": "debug",
        }
    )
    assert settings.api_keys == frozenset({"k1", "k2"})
    assert (settings.max_batch, settings.max_body_bytes) == (50, 4096)
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 9000, 2)
    assert settings.log_level == "DEBUG"


def test_settings_are_frozen() -> None:
    settings = load_settings(PIN)
    with pytest.raises(AttributeError):
        settings.model_version = "4"  # type: ignore[misc]
    assert isinstance(settings, msgspec.Struct)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODEL_URI": ""}, "MODEL_URI is required"),
        ({"MODEL_URI": "http://x/model.onnx"}, "scheme must be file:// or s3://"),
        ({"MODEL_URI": "s3://bucket-only"}, "needs a bucket and a key"),
        ({"MODEL_SHA256": "ABC"}, "MODEL_SHA256='ABC': must be 64 lower-case hex digits"),
        ({"MODEL_SHA256": "A" * 64}, "must be 64 lower-case hex digits"),
        ({"MODEL_VERSION": " "}, "MODEL_VERSION is required"),
        ({"CHURN_API_MAX_BATCH": "many"}, "CHURN_API_MAX_BATCH='many': not an integer"),
        ({"CHURN_API_MAX_BATCH": "0"}, "CHURN_API_MAX_BATCH=0: must be between 1 and"),
        ({"CHURN_API_MAX_BODY_BYTES": "10"}, "CHURN_API_MAX_BODY_BYTES=10: must be between"),
        ({"CHURN_API_PORT": "70000"}, "CHURN_API_PORT=70000"),
        ({"CHURN_API_WORKERS": "-1"}, "CHURN_API_WORKERS=-1"),
        ({"CHURN_API_LOG_LEVEL": "chatty"}, "CHURN_API_LOG_LEVEL='CHATTY': must be one of"),
    ],
)
def test_a_bad_variable_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match="invalid settings") as raised:
        load_settings({**PIN, **env})
    assert message in str(raised.value)


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"CHURN_API_LOG_LEVEL": "loud"})
    message = str(raised.value)
    for name in ("MODEL_URI", "MODEL_SHA256", "MODEL_VERSION", "CHURN_API_LOG_LEVEL"):
        assert name in message


def test_identity_and_quota_variables_are_read() -> None:
    settings = load_settings(
        {
            **PIN,
            "CHURN_API_JWKS_URL": "https://idp.example/jwks.json",
            "CHURN_API_JWT_ISSUER": "https://idp.example/",
            "CHURN_API_JWT_AUDIENCE": "churn-api",
            "CHURN_API_JWT_ALGORITHMS": "RS256, PS256",
            "CHURN_API_JWT_LEEWAY_SECONDS": "5",
            "CHURN_API_AUTH_FILE": "/var/run/secrets/churn-api/credentials.json",
            "CHURN_API_QUOTA": "100/minute",
            "CHURN_API_REDIS_URL": "redis://redis:6379/0",
            "CHURN_API_QUOTA_NAMESPACE": "prod",
            "CHURN_API_MAX_IN_FLIGHT": "64",
        }
    )
    assert settings.jwks_url == "https://idp.example/jwks.json"
    assert (settings.jwt_issuer, settings.jwt_audience) == ("https://idp.example/", "churn-api")
    assert settings.jwt_algorithms == frozenset({"RS256", "PS256"})
    assert settings.jwt_leeway_seconds == 5
    assert settings.auth_file == "/var/run/secrets/churn-api/credentials.json"
    assert (settings.quota, settings.redis_url) == ("100/minute", "redis://redis:6379/0")
    assert settings.quota_namespace == "prod"
    assert settings.max_in_flight == 64


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHURN_API_QUOTA": "100"}, "CHURN_API_QUOTA='100': must be <count>/"),
        ({"CHURN_API_QUOTA": "0/minute"}, "CHURN_API_QUOTA='0/minute'"),
        ({"CHURN_API_QUOTA": "5/week"}, "CHURN_API_QUOTA='5/week'"),
        ({"CHURN_API_REDIS_URL": "http://redis"}, "CHURN_API_REDIS_URL: must be a redis://"),
        ({"CHURN_API_JWKS_URL": "https://x/jwks"}, "CHURN_API_JWT_ISSUER, CHURN_API_JWT_AUDIENCE"),
        (
            {
                "CHURN_API_JWKS_URL": "file:///etc/jwks",
                "CHURN_API_JWT_ISSUER": "i",
                "CHURN_API_JWT_AUDIENCE": "a",
            },
            "must be an http(s) URL",
        ),
        ({"CHURN_API_JWT_ALGORITHMS": "RS256,HS256"}, "['HS256'] not allowed"),
        ({"CHURN_API_JWT_ALGORITHMS": "none"}, "['none'] not allowed"),
        ({"CHURN_API_MAX_IN_FLIGHT": "-1"}, "CHURN_API_MAX_IN_FLIGHT=-1"),
    ],
    ids=["no-period", "zero", "unknown-period", "redis-scheme", "partial-jwt", "jwks-scheme",
         "hmac", "alg-none", "negative-in-flight"],
)  # fmt: skip
def test_identity_and_quota_mistakes_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings({**PIN, **env})
