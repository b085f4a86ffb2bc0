"""The pins: ``platform/apps/churn-api/overlays/<env>/{model,shadow}.yaml``, parsed and written.

Both files are a strategic-merge patch on the Deployment ``churn-api`` that sets
exactly three env variables: ``MODEL_URI``, ``MODEL_SHA256`` and
``MODEL_VERSION`` for the model an environment serves (``model.yaml``), the same
three prefixed ``SHADOW_`` for the challenger it scores beside it
(``shadow.yaml``). One parser reads both. Parsing is strict, so a file edited by
hand into another shape stops the run with the file and the problem named. The
bootstrap pin (version ``"0"``, 64 zeros) means "no running model"; a shadow
file whose three values are empty strings means "no shadow".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from churn_workflows import PipelineError

__all__ = [
    "BOOTSTRAP_SHA256",
    "ENVIRONMENTS",
    "PIN_KINDS",
    "Pin",
    "PinKind",
    "parse_pin",
    "parse_shadow_pin",
    "pin_path",
    "render_pin",
    "render_shadow_pin",
]

ENVIRONMENTS = ("dev", "staging", "prod")
BOOTSTRAP_SHA256 = "0" * 64
PinKind = Literal["model", "shadow"]
PIN_KINDS: tuple[PinKind, ...] = ("model", "shadow")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PREFIX: dict[PinKind, str] = {"model": "", "shadow": "SHADOW_"}
_HEADER: dict[PinKind, str] = {
    "model": (
        "# The model this environment serves. "
        "Only the churn-promote workflow's pull requests edit this file.\n"
    ),
    "shadow": (
        "# The challenger this environment scores beside its model, never in its place "
        "(empty: none).\n"
        "# Pinned like model.yaml: URI, sha256 and registry version, all three or none.\n"
    ),
}


@dataclass(frozen=True)
class Pin:
    """What an environment serves (or scores as its shadow)."""

    uri: str
    sha256: str
    version: str

    @property
    def is_bootstrap(self) -> bool:
        """The placeholder an environment starts with: nothing runs yet."""
        return self.sha256 == BOOTSTRAP_SHA256 and self.version == "0"


def pin_path(environment: str, kind: PinKind = "model") -> str:
    """The pin's path in the repository: ``model.yaml`` or ``shadow.yaml``."""
    if environment not in ENVIRONMENTS:
        raise PipelineError(
            f"unknown environment {environment!r}; one of {', '.join(ENVIRONMENTS)}"
        )
    if kind not in PIN_KINDS:
        raise PipelineError(f"unknown pin {kind!r}; one of {', '.join(PIN_KINDS)}")
    return f"platform/apps/churn-api/overlays/{environment}/{kind}.yaml"


def _keys(kind: PinKind) -> tuple[str, str, str]:
    prefix = _PREFIX[kind]
    return (f"{prefix}MODEL_URI", f"{prefix}MODEL_SHA256", f"{prefix}MODEL_VERSION")


def _parse(text: str, where: str, kind: PinKind) -> Pin | None:
    """The one parser of both files; None only for a shadow file with three empty values."""

    def fail(problem: str) -> PipelineError:
        return PipelineError(f"{where}: invalid {kind} pin: {problem}")

    keys = _keys(kind)
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise fail(f"not YAML ({str(exc).splitlines()[0]})") from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise fail("expected one YAML mapping")
    doc: dict[str, Any] = docs[0]
    if doc.get("kind") != "Deployment" or (doc.get("metadata") or {}).get("name") != "churn-api":
        raise fail("expected a patch on the Deployment 'churn-api'")
    try:
        containers = doc["spec"]["template"]["spec"]["containers"]
        (container,) = [c for c in containers if c.get("name") == "churn-api"]
        env = container["env"]
        values = {item["name"]: item.get("value") for item in env}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise fail("expected spec.template.spec.containers[churn-api].env") from None
    if sorted(values) != sorted(keys) or len(env) != len(keys):
        raise fail(f"env must set exactly {', '.join(keys)}; found {', '.join(values)}")
    uri, sha, version = (values[k] for k in keys)
    if kind == "shadow" and (uri, sha, version) == ("", "", ""):
        return None
    if kind == "shadow" and "" in (uri, sha, version):
        raise fail(f"{', '.join(keys)} are all set or all empty")
    if not isinstance(uri, str) or not uri.startswith(("s3://", "file://")):
        raise fail(f"{keys[0]} must be s3:// or file://, got {uri!r}")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise fail(f"{keys[1]} must be 64 lower-case hex digits, got {sha!r}")
    if not isinstance(version, str) or not version.isdigit():
        raise fail(f"{keys[2]} must be a quoted registry version, got {version!r}")
    return Pin(uri=uri, sha256=sha, version=version)


def parse_pin(text: str, where: str) -> Pin:
    """Parse a ``model.yaml`` pin; ``where`` (path and ref) goes into every error."""
    pin = _parse(text, where, "model")
    if pin is None:  # only a shadow file may be empty; kept for the type checker
        raise PipelineError(f"{where}: invalid model pin: empty values")
    return pin


def parse_shadow_pin(text: str, where: str) -> Pin | None:
    """Parse a ``shadow.yaml`` pin: None when it pins no shadow."""
    return _parse(text, where, "shadow")


def _render(kind: PinKind, uri: str, sha: str, version: str) -> str:
    uri_key, sha_key, version_key = _keys(kind)
    # A URI is written bare, as in model.yaml; the empty shadow's must be quoted to stay a string.
    uri_value = uri or '""'
    return (
        "---\n" + _HEADER[kind] + "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        "  name: churn-api\n"
        "spec:\n"
        "  template:\n"
        "    spec:\n"
        "      containers:\n"
        "        - name: churn-api\n"
        "          env:\n"
        f"            - name: {uri_key}\n"
        f"              value: {uri_value}\n"
        f"            - name: {sha_key}\n"
        f'              value: "{sha}"\n'
        f"            - name: {version_key}\n"
        f'              value: "{version}"\n'
    )


def render_pin(pin: Pin) -> str:
    """The ``model.yaml`` text for ``pin``: the contract's shape, byte-stable."""
    return _render("model", pin.uri, pin.sha256, pin.version)


def render_shadow_pin(pin: Pin | None) -> str:
    """The ``shadow.yaml`` text for ``pin`` (None: the empty shadow), byte-stable."""
    if pin is None:
        return _render("shadow", "", "", "")
    return _render("shadow", pin.uri, pin.sha256, pin.version)
