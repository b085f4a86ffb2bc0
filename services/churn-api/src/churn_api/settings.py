"""Service settings: the environment read once, checked, frozen.

Steps: read each variable of docs/contracts.md, parse and check it, and either
return a frozen ``Settings`` or raise ``SettingsError`` naming every variable that
is wrong. Nothing else in the service reads ``os.environ``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import msgspec

__all__ = ["LOG_LEVELS", "Settings", "SettingsError", "load_settings"]

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_SCHEMES: Final = ("file://", "s3://")
_QUOTA: Final = re.compile(r"[1-9][0-9]{0,8}/(second|minute|hour|day)")


class SettingsError(ValueError):
    """The environment does not describe a service that can start."""


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the service needs to know at start.

    - ``frozen``: settings are read once; nothing may change them afterwards.
    - ``forbid_unknown_fields``: a typo in a test's settings is an error.
    """

    model_uri: str
    model_sha256: str
    model_version: str
    api_keys: frozenset[str] = frozenset()
    max_batch: int = 10_000
    # Room for a full batch of the widest records (the customer id at its 128-character
    # limit, about 390 bytes each) and a full /v1/feedback body (10,000 of about 220): at
    # 1 MiB, a batch over about 2,700 of them was a 413. Litestar's own default is 10 MB.
    max_body_bytes: int = 8 << 20
    host: str = "0.0.0.0"  # noqa: S104 - a container listens on every interface
    port: int = 8000
    workers: int = 1
    log_level: str = "INFO"
    # The challenger scored beside the primary (overlays/<env>/shadow.yaml): all three or none.
    shadow_model_uri: str | None = None
    shadow_model_sha256: str | None = None
    shadow_model_version: str | None = None
    max_in_flight: int = 256
    # Identity (auth.py): a credentials file (mounted Secret) and/or one JWT issuer.
    auth_file: str = ""
    jwks_url: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_algorithms: frozenset[str] = frozenset({"RS256", "ES256"})
    jwt_leeway_seconds: int = 30
    # Quotas (quotas.py): requests per client per period; Redis shares the counts.
    quota: str = ""
    redis_url: str = ""
    quota_namespace: str = "churn-api-quota"
    # Traces (tracing.py): an OTLP/HTTP collector; empty = no tracing at all.
    otlp_endpoint: str = ""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: not an integer") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value}: must be between {low} and {high}")
    return value


def _shadow_pin(env: Mapping[str, str]) -> dict[str, str]:
    names = ("SHADOW_MODEL_URI", "SHADOW_MODEL_SHA256", "SHADOW_MODEL_VERSION")
    given = {name: env.get(name, "").strip() for name in names}
    if not any(given.values()):
        return {}
    if not all(given.values()):
        missing = ", ".join(name for name, value in given.items() if not value)
        raise SettingsError(f"a shadow model needs all of {', '.join(names)}; missing {missing}")
    uri, digest, version = given.values()
    if not uri.startswith(_SCHEMES):
        raise SettingsError(f"SHADOW_MODEL_URI={uri!r}: the scheme must be file:// or s3://")
    if not _SHA256.fullmatch(digest):
        raise SettingsError(f"SHADOW_MODEL_SHA256={digest!r}: must be 64 lower-case hex digits")
    return {
        "shadow_model_uri": uri,
        "shadow_model_sha256": digest,
        "shadow_model_version": version,
    }


def _identity(env: Mapping[str, str]) -> dict[str, object]:
    """The JWT and credentials-file settings (auth.py)."""
    values: dict[str, object] = {}
    names = ("CHURN_API_JWKS_URL", "CHURN_API_JWT_ISSUER", "CHURN_API_JWT_AUDIENCE")
    jwt_values = [env.get(name, "").strip() for name in names]
    if any(jwt_values) and not all(jwt_values):
        missing = [n for n, v in zip(names, jwt_values, strict=True) if not v]
        raise SettingsError(f"{', '.join(missing)} must be set with the other JWT settings")
    values["jwks_url"], values["jwt_issuer"], values["jwt_audience"] = jwt_values
    if jwt_values[0] and not jwt_values[0].startswith(("https://", "http://")):
        raise SettingsError(f"CHURN_API_JWKS_URL={jwt_values[0]!r}: must be an http(s) URL")
    raw = env.get("CHURN_API_JWT_ALGORITHMS", "").strip()
    if raw:
        algorithms = frozenset(a.strip() for a in raw.split(",") if a.strip())
        symmetric = sorted(a for a in algorithms if a.startswith("HS") or a == "none")
        if symmetric:
            raise SettingsError(
                f"CHURN_API_JWT_ALGORITHMS: {symmetric} not allowed (asymmetric ones only)"
            )
        values["jwt_algorithms"] = algorithms
    values["jwt_leeway_seconds"] = _int(env, "CHURN_API_JWT_LEEWAY_SECONDS", 30, 0, 600)
    values["auth_file"] = env.get("CHURN_API_AUTH_FILE", "").strip()
    return values


def _quota(env: Mapping[str, str]) -> dict[str, object]:
    """The per-client quota and where its counters live (quotas.py)."""
    values: dict[str, object] = {}
    raw = env.get("CHURN_API_QUOTA", "").strip()
    if raw and not _QUOTA.fullmatch(raw):
        raise SettingsError(
            f"CHURN_API_QUOTA={raw!r}: must be <count>/<second|minute|hour|day>, e.g. 100/minute"
        )
    values["quota"] = raw
    url = env.get("CHURN_API_REDIS_URL", "").strip()
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("CHURN_API_REDIS_URL: must be a redis://, rediss:// or unix:// URL")
    values["redis_url"] = url
    endpoint = env.get("CHURN_API_OTLP_ENDPOINT", "").strip()
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise SettingsError(f"CHURN_API_OTLP_ENDPOINT={endpoint!r}: must be an http(s) URL")
    values["otlp_endpoint"] = endpoint
    values["quota_namespace"] = (
        env.get("CHURN_API_QUOTA_NAMESPACE", "").strip() or "churn-api-quota"
    )
    return values


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build the settings from ``env`` (``os.environ`` in production); raise on any error."""
    errors: list[str] = []

    def check(fn: object) -> None:
        try:
            assert callable(fn)
            fn()
        except SettingsError as exc:
            errors.append(str(exc))

    values: dict[str, object] = {}

    def model_uri() -> None:
        uri = env.get("MODEL_URI", "").strip()
        if not uri:
            raise SettingsError("MODEL_URI is required (file://… or s3://…)")
        if not uri.startswith(_SCHEMES):
            raise SettingsError(f"MODEL_URI={uri!r}: the scheme must be file:// or s3://")
        if uri.startswith("s3://") and "/" not in uri.removeprefix("s3://").strip("/"):
            raise SettingsError(f"MODEL_URI={uri!r}: an s3:// URI needs a bucket and a key")
        values["model_uri"] = uri

    def model_sha256() -> None:
        digest = env.get("MODEL_SHA256", "").strip()
        if not _SHA256.fullmatch(digest):
            raise SettingsError(
                f"MODEL_SHA256={digest!r}: must be 64 lower-case hex digits (the artifact's sha256)"
            )
        values["model_sha256"] = digest

    def model_version() -> None:
        version = env.get("MODEL_VERSION", "").strip()
        if not version:
            raise SettingsError("MODEL_VERSION is required (the registry version)")
        values["model_version"] = version

    def shadow() -> None:
        values.update(_shadow_pin(env))

    def api_keys() -> None:
        keys = frozenset(k.strip() for k in env.get("CHURN_API_KEYS", "").split(",") if k.strip())
        values["api_keys"] = keys

    def numbers() -> None:
        values["max_batch"] = _int(env, "CHURN_API_MAX_BATCH", 10_000, 1, 100_000)
        values["max_body_bytes"] = _int(env, "CHURN_API_MAX_BODY_BYTES", 8 << 20, 1024, 1 << 28)
        values["port"] = _int(env, "CHURN_API_PORT", 8000, 1, 65535)
        values["workers"] = _int(env, "CHURN_API_WORKERS", 1, 1, 64)
        values["max_in_flight"] = _int(env, "CHURN_API_MAX_IN_FLIGHT", 256, 0, 1_000_000)

    def log_level() -> None:
        level = env.get("CHURN_API_LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if level not in LOG_LEVELS:
            raise SettingsError(
                f"CHURN_API_LOG_LEVEL={level!r}: must be one of {', '.join(LOG_LEVELS)}"
            )
        values["log_level"] = level

    for fn in (
        model_uri,
        model_sha256,
        model_version,
        shadow,
        api_keys,
        numbers,
        log_level,
        lambda: values.update(_identity(env)),
        lambda: values.update(_quota(env)),
    ):
        check(fn)
    if errors:
        raise SettingsError("invalid settings: " + "; ".join(errors))
    values["host"] = env.get("CHURN_API_HOST", "").strip() or "0.0.0.0"  # noqa: S104
    return msgspec.convert(values, Settings)
