"""The model pin: ``platform/apps/churn-api/overlays/<env>/model.yaml``, parsed and written.

The pin is a strategic-merge patch on the Deployment ``churn-api`` that sets
exactly ``MODEL_URI``, ``MODEL_SHA256`` and ``MODEL_VERSION``. Parsing is
strict, so a file edited by hand into another shape stops the run with the file
and the problem named. The bootstrap pin (version ``"0"``, 64 zeros) means "no
running model".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from churn_workflows import PipelineError

__all__ = ["BOOTSTRAP_SHA256", "ENVIRONMENTS", "Pin", "parse_pin", "pin_path", "render_pin"]

ENVIRONMENTS = ("dev", "staging", "prod")
BOOTSTRAP_SHA256 = "0" * 64
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEYS = ("MODEL_URI", "MODEL_SHA256", "MODEL_VERSION")
_HEADER = (
    "# The model this environment serves. "
    "Only the churn-promote workflow's pull requests edit this file.\n"
)


@dataclass(frozen=True)
class Pin:
    """What an environment serves."""

    uri: str
    sha256: str
    version: str

    @property
    def is_bootstrap(self) -> bool:
        """The placeholder an environment starts with: nothing runs yet."""
        return self.sha256 == BOOTSTRAP_SHA256 and self.version == "0"


def pin_path(environment: str) -> str:
    """The pin's path in the repository."""
    if environment not in ENVIRONMENTS:
        raise PipelineError(
            f"unknown environment {environment!r}; one of {', '.join(ENVIRONMENTS)}"
        )
    return f"platform/apps/churn-api/overlays/{environment}/model.yaml"


def _fail(where: str, problem: str) -> PipelineError:
    return PipelineError(f"{where}: invalid model pin: {problem}")


def parse_pin(text: str, where: str) -> Pin:
    """Parse a pin; ``where`` (path and ref) goes into every error."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise _fail(where, f"not YAML ({str(exc).splitlines()[0]})") from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise _fail(where, "expected one YAML mapping")
    doc: dict[str, Any] = docs[0]
    if doc.get("kind") != "Deployment" or (doc.get("metadata") or {}).get("name") != "churn-api":
        raise _fail(where, "expected a patch on the Deployment 'churn-api'")
    try:
        containers = doc["spec"]["template"]["spec"]["containers"]
        (container,) = [c for c in containers if c.get("name") == "churn-api"]
        env = container["env"]
        values = {item["name"]: item.get("value") for item in env}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _fail(where, "expected spec.template.spec.containers[churn-api].env") from None
    if sorted(values) != sorted(_KEYS) or len(env) != len(_KEYS):
        raise _fail(where, f"env must set exactly {', '.join(_KEYS)}; found {', '.join(values)}")
    uri, sha, version = (values[k] for k in _KEYS)
    if not isinstance(uri, str) or not uri.startswith(("s3://", "file://")):
        raise _fail(where, f"MODEL_URI must be s3:// or file://, got {uri!r}")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise _fail(where, f"MODEL_SHA256 must be 64 lower-case hex digits, got {sha!r}")
    if not isinstance(version, str) or not version.isdigit():
        raise _fail(where, f"MODEL_VERSION must be a quoted registry version, got {version!r}")
    return Pin(uri=uri, sha256=sha, version=version)


def render_pin(pin: Pin) -> str:
    """The file's text for ``pin``: the contract's shape, byte-stable."""
    return (
        "---\n" + _HEADER + "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        "  name: churn-api\n"
        "spec:\n"
        "  template:\n"
        "    spec:\n"
        "      containers:\n"
        "        - name: churn-api\n"
        "          env:\n"
        "            - name: MODEL_URI\n"
        f"              value: {pin.uri}\n"
        "            - name: MODEL_SHA256\n"
        f'              value: "{pin.sha256}"\n'
        "            - name: MODEL_VERSION\n"
        f'              value: "{pin.version}"\n'
    )
