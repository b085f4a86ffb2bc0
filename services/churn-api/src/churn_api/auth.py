"""Who is calling, and may they: API keys and Bearer JWTs, each with scopes.

A request to any route but the probes and ``/metrics`` must carry either

- ``X-API-Key``: a key from ``CHURN_API_KEYS`` (every scope) or from the
  credentials file (the scopes listed for it); or
- ``Authorization: Bearer <JWT>``: signed by a key of the JWKS at
  ``jwks_url`` with an allowed asymmetric algorithm, issued by ``issuer`` for
  ``audience``, unexpired (``leeway_seconds`` of clock skew), with a ``sub``;
  its scopes are the ``scope`` claim (space-separated) or ``scp`` (a list).

Missing or bad credentials answer 401; a route's scope (``opt={"scope": ...}``)
the caller lacks answers 403. Neither is ever a 500.

The credentials file (``CHURN_API_AUTH_FILE``, a mounted Secret) is JSON::

    {"api_keys": [{"name": "crm", "sha256": "<hex of the key>", "scopes": ["predict"]}],
     "jwt": {"jwks_url": "...", "issuer": "...", "audience": "...",
             "algorithms": ["RS256"], "leeway_seconds": 30}}

It is re-read when it changes (checked at most once a second), so keys and JWKS
settings rotate without a restart; a file that does not parse keeps the last good
credentials and is logged. The JWKS is fetched in a thread, cached for
``JWKS_TTL_SECONDS`` and re-fetched early (at most every ``JWKS_RETRY_SECONDS``)
when a token names an unknown key id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

import jwt
import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware

from churn_api.logs import log_event

__all__ = [
    "JWKS_RETRY_SECONDS",
    "JWKS_TTL_SECONDS",
    "SCOPES",
    "ApiKey",
    "AuthMiddleware",
    "Authenticator",
    "Credentials",
    "JwtSettings",
    "Principal",
    "require_scope",
]

Scope = Literal["predict", "feedback", "admin"]
SCOPES: Final[tuple[Scope, ...]] = ("predict", "feedback", "admin")
JWKS_TTL_SECONDS: Final = 300
JWKS_RETRY_SECONDS: Final = 10
_FILE_CHECK_SECONDS: Final = 1.0
_ASYMMETRIC: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_UNAUTHORIZED: Final = "missing or unknown X-API-Key header or Bearer token"
logger = logging.getLogger("churn_api")


class ApiKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One key: a name for logs, metrics and quotas; the key's sha256; its scopes."""

    name: str
    sha256: str
    scopes: frozenset[Scope] = frozenset(SCOPES)


class JwtSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the signing keys are and what a token must say."""

    jwks_url: str
    issuer: str
    audience: str
    algorithms: frozenset[str] = frozenset({"RS256", "ES256"})
    leeway_seconds: int = 30

    def __post_init__(self) -> None:
        symmetric = sorted(self.algorithms - _ASYMMETRIC)
        if symmetric:  # an HMAC "key" from a public JWKS would let anyone sign
            raise ValueError(f"algorithms {symmetric} are not allowed: asymmetric ones only")


class Credentials(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything that may authenticate a caller."""

    api_keys: tuple[ApiKey, ...] = ()
    jwt: JwtSettings | None = None

    @property
    def enabled(self) -> bool:
        """True when any credential is configured (otherwise the API is open)."""
        return bool(self.api_keys) or self.jwt is not None


class Principal(msgspec.Struct, frozen=True):
    """An authenticated caller: ``key:<name>`` or ``jwt:<sub>``, with its scopes."""

    subject: str
    scopes: frozenset[str]


def key_digest(key: str) -> str:
    """The sha256 (hex) a credentials file stores for ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()


def env_credentials(api_keys: frozenset[str], jwt_values: Mapping[str, Any] | None) -> Credentials:
    """Credentials from settings: plain keys with every scope, and the JWT settings if any."""
    keys = tuple(
        ApiKey(name=key_digest(key)[:12], sha256=key_digest(key)) for key in sorted(api_keys)
    )
    jwt_settings = msgspec.convert(jwt_values, JwtSettings) if jwt_values else None
    return Credentials(api_keys=keys, jwt=jwt_settings)


class _Jwks:
    """The JWKS of one URL: fetched in a thread, cached, re-fetched for an unknown key id."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = -float("inf")
        self._lock = asyncio.Lock()

    def _fetch(self) -> dict[str, jwt.PyJWK]:
        with urllib.request.urlopen(self.url, timeout=5) as response:  # noqa: S310 - from settings
            data = json.loads(response.read())
        keys: dict[str, jwt.PyJWK] = {}
        for entry in data.get("keys", []):
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:  # a key type or algorithm we do not use: skip it
                continue
            keys[str(entry.get("kid", ""))] = key
        return keys

    async def key(self, kid: str) -> jwt.PyJWK | None:
        now = time.monotonic()
        stale = now - self._fetched > JWKS_TTL_SECONDS
        unknown = kid not in self._keys and now - self._fetched > JWKS_RETRY_SECONDS
        if stale or unknown:
            async with self._lock:
                if time.monotonic() - self._fetched > min(JWKS_RETRY_SECONDS, JWKS_TTL_SECONDS):
                    try:
                        self._keys = await asyncio.to_thread(self._fetch)
                    except (OSError, ValueError) as exc:  # keep the last keys; say so
                        log_event(
                            logger, logging.ERROR, "jwks_unreachable", url=self.url, detail=str(exc)
                        )
                    self._fetched = time.monotonic()
        return self._keys.get(kid)


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        return frozenset(str(s) for s in scp)
    return frozenset()


class Authenticator:
    """Checks credentials against the current ``Credentials``, reloading the file on change."""

    def __init__(self, base: Credentials, path: Path | None = None) -> None:
        self._base = base
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._checked = -float("inf")
        self._jwks: _Jwks | None = None
        self.credentials = base
        self._by_digest: dict[str, ApiKey] = {}
        self._apply(base)
        if path is not None:
            self.reload_if_changed(force=True)

    def _apply(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._by_digest = {key.sha256: key for key in credentials.api_keys}
        url = credentials.jwt.jwks_url if credentials.jwt else None
        if url is None:
            self._jwks = None
        elif self._jwks is None or self._jwks.url != url:
            self._jwks = _Jwks(url)

    def reload_if_changed(self, *, force: bool = False) -> None:
        """Re-read the credentials file if its size or mtime changed."""
        now = time.monotonic()
        if self._path is None or (not force and now - self._checked < _FILE_CHECK_SECONDS):
            return
        self._checked = now
        try:
            stat = self._path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return
            loaded = msgspec.json.decode(self._path.read_bytes(), type=Credentials)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            log_event(
                logger, logging.ERROR, "credentials_refused", path=str(self._path), detail=str(exc)
            )
            return
        self._stamp = stamp
        merged = Credentials(
            api_keys=(*self._base.api_keys, *loaded.api_keys),
            jwt=loaded.jwt or self._base.jwt,
        )
        self._apply(merged)
        log_event(
            logger,
            logging.INFO,
            "credentials_loaded",
            path=str(self._path),
            api_keys=[key.name for key in merged.api_keys],
            jwt=merged.jwt is not None,
        )

    def by_key(self, offered: str) -> Principal | None:
        """The principal of an API key, or None."""
        digest = key_digest(offered)
        for known, key in self._by_digest.items():
            # compare_digest: timing reveals nothing about how much of a digest matched.
            if hmac.compare_digest(digest, known):
                return Principal(subject=f"key:{key.name}", scopes=frozenset(key.scopes))
        return None

    async def by_token(self, token: str) -> Principal:
        """The principal of a Bearer JWT; ``NotAuthorizedException`` saying why not."""
        settings = self.credentials.jwt
        if settings is None or self._jwks is None:
            raise NotAuthorizedException("Bearer tokens are not accepted here; use X-API-Key")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise NotAuthorizedException(f"malformed token: {exc}") from None
        algorithm = header.get("alg")
        if algorithm not in settings.algorithms:
            allowed = ", ".join(sorted(settings.algorithms))
            raise NotAuthorizedException(f"token algorithm {algorithm!r} is not one of {allowed}")
        key = await self._jwks.key(str(header.get("kid", "")))
        if key is None:
            raise NotAuthorizedException(f"token key id {header.get('kid')!r} is not in the JWKS")
        if key.algorithm_name != algorithm:  # an RSA key never verifies an EC or HMAC signature
            raise NotAuthorizedException(
                f"token algorithm {algorithm!r} does not match its key ({key.algorithm_name})"
            )
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise NotAuthorizedException(f"invalid token: {exc}") from None
        return Principal(subject=f"jwt:{claims['sub']}", scopes=_scopes(claims))


class AuthMiddleware(AbstractAuthenticationMiddleware):
    """Litestar's authentication middleware over an ``Authenticator``."""

    def __init__(self, app: Any, authenticator: Authenticator, exclude: list[str]) -> None:
        super().__init__(app, exclude=exclude)
        self.authenticator = authenticator

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Any:
        """The caller as a ``Principal`` (``request.user``), or 401."""
        self.authenticator.reload_if_changed()
        headers = connection.headers
        offered = headers.get("x-api-key")
        if offered is not None:
            principal = self.authenticator.by_key(offered)
            if principal is None:
                raise NotAuthorizedException(_UNAUTHORIZED)
            return AuthenticationResult(user=principal, auth=None)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            principal = await self.authenticator.by_token(token.strip())
            return AuthenticationResult(user=principal, auth=token)
        raise NotAuthorizedException(_UNAUTHORIZED)

    @staticmethod
    def define(authenticator: Authenticator, exempt: frozenset[str]) -> DefineMiddleware:
        """The middleware for ``Litestar(middleware=...)``, skipping the ``exempt`` paths."""
        patterns = [f"^{path}$" for path in sorted(exempt)]
        return DefineMiddleware(AuthMiddleware, authenticator=authenticator, exclude=patterns)


def require_scope(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """A Litestar guard: 403 unless the caller holds the handler's ``opt["scope"]``."""
    needed = handler.opt.get("scope")
    if needed is None:
        return
    user = connection.scope.get("user")
    if not isinstance(user, Principal) or needed not in user.scopes:
        raise PermissionDeniedException(f"this route needs the {needed!r} scope")
