"""What Argo CD generates and syncs in one environment, computed offline.

The root Application of `clusters/<env>` syncs that folder; the ApplicationSets in it generate
one Application per cluster Secret, their templates filled by the cluster generator's Go
template parameters (`.metadata.labels.*`, `.metadata.annotations.*`, `.server`, `.name`).
Here the cluster Secret is the fixture `fixtures/cluster-secrets/<env>.yaml` (the keys OpenTofu
writes, with example values), templates are filled with the subset of Go templates this
repository uses (`{{.a.b}}`, `{{index .a "b"}}` and raw strings; a missing key is an error, as
`missingkey=error` makes it), and a Git source renders with the real `kubectl kustomize`,
with the Application's own `kustomize.images` and `kustomize.patches` applied as Argo CD's repo
server applies them (argo-cd util/kustomize/kustomize.go, `kustomize.Build`): it runs one
`kustomize edit set image <entry>...` in the source path, then appends the patches to that
path's kustomization. Here both edits are made to a copy of the source folder beside
symbolic links to everything else, so relative references resolve as in the checkout.

`kustomize edit set image` replaces a matching entry whole (kustomize
kustomize/commands/edit/set/setimage.go, `RunSetImage`): `name=registry/name` drops the
entry's digest, and only `*` keeps a field, as in `name=registry/name@*`. `set_images` follows
that function; Argo CD pins its kustomize (argo-cd hack/tool-versions.sh, 5.8.1).

Run as a script, `argocd_tree.py render <env> <path>` prints what the Application of `env` that
syncs `path` renders, or `kubectl kustomize <path>` when no Application of `env` syncs it.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
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
    "set_images",
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
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# The Application kustomize options modelled here; any other is refused, not ignored.
KUSTOMIZE_OPTIONS = frozenset({"images", "patches"})
# The fields of a kustomize `images:` entry that `kustomize edit set image` writes.
IMAGE_FIELDS = ("newName", "newTag", "digest")
# setimage.go `preserveSeparator`: this value keeps the entry's field as it is.
PRESERVE = "*"


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


def _split_image(reference: str) -> tuple[str, str, str]:
    """(name, tag, digest) of an image reference, as kustomize api/internal/image `Split`."""
    slash = reference.find("/")
    offset = slash if slash > 0 else 0
    search = reference[offset:]
    at, colon = search.find("@"), search.find(":")
    if colon < 0 and at < 0:
        return reference, "", ""
    if at >= 0 and (at < colon or colon < 0):
        return reference[: offset + at], "", reference[offset + at + 1 :]
    if at >= 0:
        return (
            reference[: offset + colon],
            reference[offset + colon + 1 : offset + at],
            reference[offset + at + 1 :],
        )
    return reference[: offset + colon], reference[offset + colon + 1 :], ""


def _parse_image_argument(argument: str) -> dict[str, str]:
    """One `kustomize edit set image` argument as an `images:` entry (setimage.go `parse`)."""
    key, separator, value = argument.partition("=")
    if not separator:
        key, value = "", argument
    name, tag, digest = _split_image(value)
    if name == argument:
        raise TemplateError(
            f"kustomize image {argument!r} sets nothing: use <image>=<newimage>[:<tag>][@<digest>]"
            ", <image>:<tag> or <image>@<digest>"
        )
    return {"name": key or name, "newName": name if key else "", "newTag": tag, "digest": digest}


def set_images(existing: list[dict[str, Any]], arguments: list[str]) -> list[dict[str, Any]]:
    """The `images:` list after `kustomize edit set image *arguments` (setimage.go
    `RunSetImage`): an argument replaces the entry of its name whole, `*` keeps that field of
    the entry, entries no argument names stay, and the list is sorted by name."""
    wanted = {entry["name"]: entry for entry in map(_parse_image_argument, arguments)}
    for entry in existing:
        argument = wanted.get(entry["name"])
        if argument is None:
            wanted[entry["name"]] = dict(entry)
            continue
        for key in IMAGE_FIELDS:
            if argument[key] == PRESERVE:
                argument[key] = str(entry.get(key) or "")
    return [
        {key: value for key, value in entry.items() if value and value != PRESERVE}
        for _, entry in sorted(wanted.items())
    ]


def _kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise AssertionError(f"{directory}: no kustomization file")


def _anchor(directory: Path) -> Path:
    """The checkout `directory` is in: the nearest folder holding platform/ and clusters/."""
    for folder in directory.parents:
        if (folder / "platform").is_dir() and (folder / "clusters").is_dir():
            return folder
    return Path(directory.anchor)


def _shadow(directory: Path, into: Path) -> Path:
    """A copy of `directory` at the same place under `into`, everything else a symbolic link
    to the checkout: the copy can be edited, and `../../base` still finds the base."""
    anchor = _anchor(directory)
    here, there = anchor, into
    for part in directory.relative_to(anchor).parts:
        for entry in here.iterdir():
            if entry.name != part:
                (there / entry.name).symlink_to(entry)
        here, there = here / part, there / part
        there.mkdir()
    shutil.copytree(directory, there, symlinks=True, dirs_exist_ok=True)
    return there


@functools.cache
def _kustomize(directory: str, options: str) -> tuple[dict[str, Any], ...]:
    target = Path(directory)
    kustomize_options: dict[str, Any] = json.loads(options)
    with tempfile.TemporaryDirectory(prefix="argocd-tree-") as tmp:
        if kustomize_options:
            target = _shadow(target, Path(tmp))
            kfile = _kustomization_file(target)
            spec = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
            if kustomize_options.get("images"):
                spec["images"] = set_images(spec.get("images") or [], kustomize_options["images"])
            if kustomize_options.get("patches"):
                spec["patches"] = [*(spec.get("patches") or []), *kustomize_options["patches"]]
            kfile.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        completed = subprocess.run(
            [_kubectl(), "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
    if completed.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{completed.stderr.strip()}")
    return tuple(d for d in yaml.safe_load_all(completed.stdout) if isinstance(d, dict))


def kustomize(
    directory: Path,
    patches: list[dict[str, Any]] | None = None,
    images: list[str] | None = None,
) -> list[dict[str, Any]]:
    """What `kubectl kustomize directory` renders, with Argo CD's `kustomize.images` and
    `kustomize.patches` on top."""
    options = {key: value for key, value in (("images", images), ("patches", patches)) if value}
    return [dict(d) for d in _kustomize(str(directory.resolve()), json.dumps(options))]


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
    options = source.spec.get("kustomize") or {}
    unknown = sorted(set(options) - KUSTOMIZE_OPTIONS)
    if unknown:
        raise TemplateError(f"{source.path}: kustomize options not modelled here: {unknown}")
    return kustomize(ROOT / source.path, options.get("patches"), options.get("images"))


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


def render_path(env: str, path: str) -> list[dict[str, Any]]:
    """What Argo CD syncs from `path` in `env`: the source of the Application of `env` that
    names `path`, with its kustomize options; the plain kustomization when none names it."""
    for app in generated_apps(env):
        for source in app.sources:
            if source.path is not None and source.path.strip("/") == path.strip("/"):
                return render_source(source)
    return kustomize(ROOT / path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="print what Argo CD syncs from a path")
    render.add_argument("env", help="the environment (fixtures/cluster-secrets/<env>.yaml)")
    render.add_argument("path", help="a kustomization folder, relative to the repository")
    args = parser.parse_args(argv)
    try:
        documents = render_path(args.env, args.path)
    except (TemplateError, AssertionError, FileNotFoundError) as error:
        print(f"argocd_tree: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump_all(documents, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
