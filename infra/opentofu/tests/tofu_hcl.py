"""Parse OpenTofu HCL without OpenTofu: python-hcl2 plus a normaliser.

python-hcl2 keeps the quotes of block labels and literal strings (``'"aws_vpc"'``); the
helpers here strip them and drop its bookkeeping keys, so callers read
``load_config(path).resources["aws_vpc"]["this"]``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

__all__ = [
    "ENVIRONMENTS",
    "INFRA",
    "MODULES",
    "REPO",
    "ROOTS",
    "Config",
    "load_config",
    "load_hcl",
    "load_hcl_text",
    "one",
    "tf_files",
]

INFRA = Path(__file__).resolve().parents[1]
REPO = INFRA.parents[1]
ENVIRONMENTS = ("dev", "staging", "prod")
# Every root: one per environment, and envs/shared for what exists once per account.
ROOTS = (*ENVIRONMENTS, "shared")
MODULES = ("network", "eks", "storage", "ecr", "identity", "database", "ingress", "gitops-bridge")


def _unquote(value: Any) -> Any:
    """Strip python-hcl2's quotes from keys and literal strings; drop its bookkeeping keys."""
    if isinstance(value, dict):
        return {
            _unquote(k): _unquote(v)
            for k, v in value.items()
            if k not in ("__is_block__", "__comments__")
        }
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


@functools.lru_cache(maxsize=512)
def _parse_text(text: str) -> dict[str, Any]:
    result: dict[str, Any] = _unquote(hcl2.loads(text))
    return result


def load_hcl(path: Path) -> dict[str, Any]:
    """Parse one HCL file (``.tf`` or ``.tfvars``) into plain, unquoted Python values.

    Cached by content: the broken-copy tests parse the same unchanged files many times.
    Callers must not mutate the result.
    """
    return _parse_text(path.read_text(encoding="utf-8"))


def load_hcl_text(text: str) -> dict[str, Any]:
    """Parse HCL source text (a snippet, such as a jsonencode() argument) like load_hcl."""
    return _parse_text(text)


def tf_files(root: Path) -> list[Path]:
    """Every ``.tf`` file below root, skipping provider caches."""
    return sorted(p for p in root.rglob("*.tf") if ".terraform" not in p.parts)


@dataclass
class Config:
    """The blocks of one OpenTofu module directory, merged across its ``.tf`` files."""

    path: Path
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)
    ephemeral: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        """One resource block, or a KeyError naming what is missing."""
        try:
            return self.resources[kind][name]
        except KeyError:
            raise KeyError(f"{self.path}: no resource {kind}.{name}") from None

    def policy_document(self, name: str) -> dict[str, Any]:
        """One ``data "aws_iam_policy_document"`` block."""
        try:
            return self.data["aws_iam_policy_document"][name]
        except KeyError:
            raise KeyError(f"{self.path}: no aws_iam_policy_document.{name}") from None


def _merge_labelled(target: dict[str, dict[str, Any]], blocks: list[dict[str, Any]]) -> None:
    for block in blocks:
        for kind, named in block.items():
            target.setdefault(kind, {}).update(named)


def load_config(directory: Path) -> Config:
    """Parse every ``.tf`` file directly in directory (one module) into a Config."""
    cfg = Config(path=directory)
    for path in sorted(directory.glob("*.tf")):
        parsed = load_hcl(path)
        _merge_labelled(cfg.resources, parsed.get("resource", []))
        _merge_labelled(cfg.data, parsed.get("data", []))
        _merge_labelled(cfg.ephemeral, parsed.get("ephemeral", []))
        for block in parsed.get("variable", []):
            cfg.variables.update(block)
        for block in parsed.get("output", []):
            cfg.outputs.update(block)
        for block in parsed.get("module", []):
            cfg.modules.update(block)
        for block in parsed.get("locals", []):
            cfg.locals.update(block)
        cfg.terraform.extend(parsed.get("terraform", []))
    return cfg


def one(value: Any) -> dict[str, Any]:
    """A nested block parses as a one-element list of dicts; return the dict."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    return value if isinstance(value, dict) else {}
