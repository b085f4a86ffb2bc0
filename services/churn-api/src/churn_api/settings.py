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
    max_body_bytes: int = 1_048_576
    host: str = "0.0.0.0"  # noqa: S104 - a container listens on every interface
    port: int = 8000
    workers: int = 1
    log_level: str = "INFO"
    # The challenger scored beside the primary (overlays/<env>/shadow.yaml): all three or none.
    shadow_model_uri: str | None = None
    shadow_model_sha256: str | None = None
    shadow_model_version: str | None = None


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
        values["max_body_bytes"] = _int(env, "CHURN_API_MAX_BODY_BYTES", 1_048_576, 1024, 1 << 28)
        values["port"] = _int(env, "CHURN_API_PORT", 8000, 1, 65535)
        values["workers"] = _int(env, "CHURN_API_WORKERS", 1, 1, 64)

    def log_level() -> None:
        level = env.get("CHURN_API_LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if level not in LOG_LEVELS:
            raise SettingsError(
                f"CHURN_API_LOG_LEVEL={level!r}: must be one of {', '.join(LOG_LEVELS)}"
            )
        values["log_level"] = level

    for fn in (model_uri, model_sha256, model_version, shadow, api_keys, numbers, log_level):
        check(fn)
    if errors:
        raise SettingsError("invalid settings: " + "; ".join(errors))
    values["host"] = env.get("CHURN_API_HOST", "").strip() or "0.0.0.0"  # noqa: S104
    return msgspec.convert(values, Settings)
