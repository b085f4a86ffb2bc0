"""What Argo CD generates and syncs in one environment, computed offline.

The root Application of `clusters/<env>` syncs that folder; the ApplicationSets in it generate
one Application per cluster Secret, their templates filled by the cluster generator's Go
template parameters (`.metadata.labels.*`, `.metadata.annotations.*`, `.server`, `.name`).
Here the cluster Secret is the fixture `fixtures/cluster-secrets/<env>.yaml` (the keys OpenTofu
writes, with example values), templates are filled with the subset of Go templates this
repository uses (`{{.a.b}}`, `{{index .a "b"}}` and raw strings; a missing key is an error, as
`missingkey=error` makes it), and a Git source renders with the real `kubectl kustomize`,
with the Application's own `kustomize.patches` applied as Argo CD applies them.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ROOT",
    "AppSource",
    "GeneratedApp",
    "TemplateError",
    "cluster_params",
    "cluster_secret",
    "fill",
    "generated_apps",
    "kustomize",
    "render_source",
    "template_keys",
]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).with_name("fixtures") / "cluster-secrets"
WAVE = "argocd.argoproj.io/sync-wave"
# `{{ .a.b }}`, `{{ index .a.b "key" }}` or a raw string `{{`{{kept}}`}}` (how a template
# writes braces another tool reads), with optional trim markers.
_ACTION = re.compile(r"\{\{-?\s*(`[^`]*`|.*?)\s*-?\}\}")
_RAW = re.compile(r"^`([^`]*)`$")
_FIELD = re.compile(r"^\.([A-Za-z0-9_.]+)$")
_INDEX = re.compile(r'^index\s+\.([A-Za-z0-9_.]+)\s+"([^"]+)"$')


class TemplateError(ValueError):
    """A template action this module cannot fill, or a parameter the cluster lacks."""


def cluster_secret(env: str) -> dict[str, Any]:
    """The fixture cluster Secret of `env`."""
    path = FIXTURES / f"{env}.yaml"
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def cluster_params(env: str) -> dict[str, Any]:
    """The cluster generator's parameters for the fixture Secret of `env`."""
    secret = cluster_secret(env)
    data = secret.get("stringData") or {}
    return {
        "name": data["name"],
        "nameNormalized": data["name"],
        "server": data["server"],
        "metadata": {
            "labels": dict(secret["metadata"].get("labels") or {}),
            "annotations": dict(secret["metadata"].get("annotations") or {}),
        },
    }


def _lookup(params: dict[str, Any], dotted: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise TemplateError(f"map has no entry for key {part!r} (in .{dotted})")
        node = node[part]
    return node


def _action_keys(action: str) -> tuple[str, str | None]:
    field = _FIELD.match(action)
    if field:
        return field.group(1), None
    index = _INDEX.match(action)
    if index:
        return index.group(1), index.group(2)
    raise TemplateError(f"unsupported template action {{{{{action}}}}}")


def fill(value: Any, params: dict[str, Any]) -> Any:
    """`value` with every template action filled from `params` (recursively)."""
    if isinstance(value, dict):
        return {fill(k, params): fill(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, params) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        raw = _RAW.match(match.group(1))
        if raw:
            return raw.group(1)
        path, key = _action_keys(match.group(1))
        node = _lookup(params, path)
        if key is not None:
            if not isinstance(node, dict) or key not in node:
                raise TemplateError(f"map has no entry for key {key!r} (in .{path})")
            node = node[key]
        return str(node)

    return _ACTION.sub(one, value)


def template_keys(value: Any) -> Iterator[str]:
    """Every parameter a template reads, as a dotted path (`metadata.annotations.aws_region`)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from template_keys(k)
            yield from template_keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from template_keys(v)
    elif isinstance(value, str):
        for match in _ACTION.finditer(value):
            if _RAW.match(match.group(1)):
                continue
            path, key = _action_keys(match.group(1))
            yield path if key is None else f"{path}.{key}"


def _kubectl() -> str:
    return os.environ.get("KUBECTL") or str(Path(sys.executable).with_name("kubectl"))


@functools.cache
def _kustomize(directory: str, patches: str) -> tuple[dict[str, Any], ...]:
    target = Path(directory)
    with tempfile.TemporaryDirectory(prefix="argocd-tree-") as tmp:
        if patches != "[]":
            # Argo CD adds the Application's patches to the kustomization it builds.
            wrapper = Path(tmp)
            (wrapper / "kustomization.yaml").write_text(
                yaml.safe_dump(
                    {
                        "apiVersion": "kustomize.config.k8s.io/v1beta1",
                        "kind": "Kustomization",
                        "resources": [os.path.relpath(target, wrapper)],
                        "patches": json.loads(patches),
                    }
                ),
                encoding="utf-8",
            )
            target = wrapper
        completed = subprocess.run(
            [_kubectl(), "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
    if completed.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{completed.stderr.strip()}")
    return tuple(d for d in yaml.safe_load_all(completed.stdout) if isinstance(d, dict))


def kustomize(directory: Path, patches: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """What `kubectl kustomize directory` renders, with Argo CD's `kustomize.patches` on top."""
    return [dict(d) for d in _kustomize(str(directory.resolve()), json.dumps(patches or []))]


@dataclass(frozen=True)
class AppSource:
    """One source of a generated Application."""

    spec: dict[str, Any]

    @property
    def chart(self) -> str | None:
        return self.spec.get("chart")

    @property
    def path(self) -> str | None:
        return None if self.chart else self.spec.get("path")


@dataclass(frozen=True)
class GeneratedApp:
    """An Application as the cluster runs it: filled template, its wave in the root."""

    name: str
    wave: int
    origin: str
    spec: dict[str, Any]

    @property
    def sources(self) -> list[AppSource]:
        found = [self.spec["source"]] if "source" in self.spec else self.spec.get("sources", [])
        return [AppSource(s) for s in found]

    @property
    def sync_options(self) -> list[str]:
        return list((self.spec.get("syncPolicy") or {}).get("syncOptions") or [])


def render_source(source: AppSource) -> list[dict[str, Any]]:
    """The resources a Git source renders (none for a chart or a `ref` source)."""
    if source.path is None:
        return []
    patches = (source.spec.get("kustomize") or {}).get("patches")
    return kustomize(ROOT / source.path, patches)


def generated_apps(env: str) -> list[GeneratedApp]:
    """Every Application the root of `clusters/<env>` syncs or generates, in root order."""
    params = cluster_params(env)
    apps: list[GeneratedApp] = []
    for document in kustomize(ROOT / "clusters" / env):
        if document.get("kind") not in {"Application", "ApplicationSet"}:
            continue
        wave = int((document["metadata"].get("annotations") or {}).get(WAVE, "0"))
        origin = f"{document['kind']}/{document['metadata']['name']}"
        if document["kind"] == "Application":
            apps.append(GeneratedApp(document["metadata"]["name"], wave, origin, document["spec"]))
            continue
        selector = document["spec"]["generators"][0]["clusters"]["selector"]
        labels = params["metadata"]["labels"]
        if not _selects(selector, labels):
            continue
        template = fill(document["spec"]["template"], params)
        apps.append(GeneratedApp(template["metadata"]["name"], wave, origin, template["spec"]))
    return sorted(apps, key=lambda a: a.wave)


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, values = expression["key"], expression.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[expression["operator"]]
        if not ok:
            return False
    return True
