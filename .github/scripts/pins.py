"""Edit the pins that say what runs: image digests and model pins, one file per change.

The release and promote workflows call this script, so every pull request they open
touches exactly one pin. It uses the standard library only (no workspace install on
the release runners) and edits text in place, so comments and layout survive.

Commands:
1. `set-image`: set the digest of the `images:` entry of an overlay's kustomization.yaml (the
   registry is each cluster's, named by the churn-api ApplicationSet).
2. `set-workflows-image`: set `IMAGE_DIGEST` in workflows/src/churn_workflows/argo.py, the
   constant the pipeline's templates are rendered from (the registry is each cluster's, named
   by the churn-workflows and argo-workflows ApplicationSets).
3. `promote`: copy a model pin or an image digest from one environment to the next, or move
   the platform pins (clusters/<env>/pins.yaml: chart versions and the Git revision of values,
   policies and rules): dev runs main, so dev -> staging takes main's chart versions and the
   promoted revision; staging -> prod copies staging's pins.

Every command prints a JSON summary; `--github-output FILE` also appends it as
step outputs (key=value lines).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ENVIRONMENTS",
    "PinError",
    "check_image",
    "copy_image",
    "copy_model",
    "copy_platform",
    "main",
    "read_image",
    "read_model_pin",
    "set_image",
    "set_workflows_image",
]

ENVIRONMENTS = ("dev", "staging", "prod")
OVERLAYS = Path("platform/apps/churn-api/overlays")
IMAGE_NAME = "churn-api"
WORKFLOWS_IMAGES_FILE = Path("workflows/src/churn_workflows/argo.py")

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# An image reference pinned by digest: registry/repository@sha256:<64 hex>.
IMAGE_REF = re.compile(r"^[a-z0-9.-]+(?::[0-9]+)?/[a-z0-9._/-]+@sha256:[0-9a-f]{64}$")
MODEL_KEYS = ("MODEL_URI", "MODEL_SHA256", "MODEL_VERSION")
CLUSTERS = Path("clusters")
APPS = Path("platform/apps")
PLATFORM_REVISION = "platform-revision"
COMMIT = re.compile(r"^[0-9a-f]{40}$")
# A pins.yaml data line: two spaces, the key, a colon, the value (comments and layout survive).
PIN_LINE = re.compile(r"^  (?P<key>[a-z0-9-]+): (?P<value>\S+)$", re.MULTILINE)
BOOTSTRAP_SHA256 = "0" * 64


class PinError(Exception):
    """A pin file or an argument is not what a promotion can work with."""


# ----------------------------------------------------------------------------- kustomize images


@dataclass(frozen=True)
class _Entry:
    start: int  # index of the `- name:` line
    end: int  # index one past the entry's last line
    indent: int  # column of the entry's keys (the `name` after `- `)


def _is_repository(name: str, repository: str) -> bool:
    return name == repository or name.endswith(f"/{repository}")


def _images_entry(lines: list[str], repository: str, path: Path) -> _Entry:
    """Find the `images:` list item for `repository` (`name` is it, or ends with /<it>)."""
    try:
        top = next(i for i, line in enumerate(lines) if line.rstrip() == "images:")
    except StopIteration:
        raise PinError(f"{path}: no top-level `images:` list") from None
    item = re.compile(r"^(\s*)- name:\s*(\S+)\s*$")
    i = top + 1
    while i < len(lines):
        line = lines[i]
        if line.strip() and not line.startswith((" ", "-", "#")):
            break  # the next top-level key ends the list
        match = item.match(line)
        if match and _is_repository(match.group(2).strip("'\""), repository):
            indent = len(match.group(1)) + 2
            end = i + 1
            while end < len(lines):
                nxt = lines[end]
                lead = len(nxt) - len(nxt.lstrip(" "))
                if nxt.strip() and (lead < indent or nxt.lstrip().startswith("- ")):
                    break
                end += 1
            return _Entry(i, end, indent)
        i += 1
    raise PinError(f"{path}: no `images:` entry for {repository}")


def _entry_value(lines: list[str], entry: _Entry, key: str) -> str | None:
    pattern = re.compile(rf"^\s*(?:- )?{key}:\s*(\S+)\s*$")
    for line in lines[entry.start : entry.end]:
        match = pattern.match(line)
        if match:
            return match.group(1).strip("'\"")
    return None


def read_image(kustomization: Path, repository: str = IMAGE_NAME) -> tuple[str, str]:
    """Return (image, digest) of the `images:` entry for `repository`; image is newName or name."""
    lines = kustomization.read_text().splitlines()
    entry = _images_entry(lines, repository, kustomization)
    image = _entry_value(lines, entry, "newName") or _entry_value(lines, entry, "name")
    digest = _entry_value(lines, entry, "digest")
    if digest is None or not DIGEST.match(digest):
        raise PinError(f"{kustomization}: images entry for {repository} has no sha256 digest")
    assert image is not None  # the entry was found by its name
    return image, digest


def check_image(image: str, repository: str = IMAGE_NAME) -> None:
    """Refuse an image that is not `registry/<repository>` (what a release built and pushed)."""
    if not re.match(r"^[a-z0-9.-]+(?::[0-9]+)?/[a-z0-9._/-]+$", image):
        raise PinError(f"image name must be registry/repository, got {image!r}")
    if not _is_repository(image, repository):
        raise PinError(f"image {image!r} is not the {repository} repository")


def set_image(kustomization: Path, digest: str, repository: str = IMAGE_NAME) -> bool:
    """Point the `images:` entry for `repository` at `digest`; return whether it changed.

    One line changes, `digest:`; a `newTag:` line is dropped: the digest alone says what runs.
    The registry is not written here: each cluster's ApplicationSet names its own (the
    cluster Secret's account and region), and Argo CD's override keeps this digest.
    """
    if not DIGEST.match(digest):
        raise PinError(f"digest must be sha256:<64 lower-case hex>, got {digest!r}")
    text = kustomization.read_text()
    lines = text.splitlines()
    entry = _images_entry(lines, repository, kustomization)
    pad = " " * entry.indent
    body: list[str] = []
    for line in lines[entry.start + 1 : entry.end]:
        key = re.match(r"^\s*(newTag|digest):", line)
        if key is None:
            body.append(line)
        elif key.group(1) == "digest":
            body.append(f"{pad}digest: {digest}")
    if not any(re.match(r"^\s*digest:", line) for line in body):
        body.insert(0, f"{pad}digest: {digest}")
    out = [*lines[: entry.start + 1], *body, *lines[entry.end :]]
    new_text = "\n".join(out) + "\n"
    if new_text == text:
        return False
    kustomization.write_text(new_text)
    return True


# ----------------------------------------------------------------------------- model pins


def _env_value_pattern(key: str) -> re.Pattern[str]:
    return re.compile(rf"^(\s*- name:\s*{key}\s*\n\s*value:\s*)(.*?)\s*$", re.MULTILINE)


def read_model_pin(path: Path) -> dict[str, str]:
    """Return MODEL_URI, MODEL_SHA256 and MODEL_VERSION from a model.yaml pin."""
    text = path.read_text()
    pin: dict[str, str] = {}
    for key in MODEL_KEYS:
        found = _env_value_pattern(key).findall(text)
        if len(found) != 1:
            raise PinError(f"{path}: expected one {key} entry, found {len(found)}")
        pin[key] = found[0][1].strip("'\"")
    if not SHA256.match(pin["MODEL_SHA256"]):
        raise PinError(f"{path}: MODEL_SHA256 is not 64 lower-case hex digits")
    return pin


def _write_model_pin(path: Path, pin: dict[str, str]) -> bool:
    text = path.read_text()
    new_text = text
    for key in MODEL_KEYS:
        pattern = _env_value_pattern(key)

        def replace(match: re.Match[str], value: str = pin[key]) -> str:
            quoted = match.group(2)[:1] in {'"', "'"}
            return match.group(1) + (f'"{value}"' if quoted else value)

        new_text, count = pattern.subn(replace, new_text)
        if count != 1:
            raise PinError(f"{path}: expected one {key} entry, found {count}")
    if new_text == text:
        return False
    path.write_text(new_text)
    return True


def _check_step(source: str, target: str) -> None:
    for env in (source, target):
        if env not in ENVIRONMENTS:
            raise PinError(f"unknown environment {env!r}; expected one of {ENVIRONMENTS}")
    if ENVIRONMENTS.index(target) != ENVIRONMENTS.index(source) + 1:
        raise PinError(
            f"promotion goes one step at a time (dev -> staging -> prod), not {source} -> {target}"
        )


def copy_model(root: Path, source: str, target: str) -> dict[str, str]:
    """Copy the model pin of `source` to `target`, pointing the URI at the target's bucket."""
    _check_step(source, target)
    source_file = root / OVERLAYS / source / "model.yaml"
    target_file = root / OVERLAYS / target / "model.yaml"
    pin = read_model_pin(source_file)
    read_model_pin(target_file)  # the target must be a well-formed pin too
    sha = pin["MODEL_SHA256"]
    if sha == BOOTSTRAP_SHA256:
        raise PinError(f"{source_file}: {source} still has the bootstrap pin; nothing to promote")
    expected = re.compile(rf"^s3://churn-{source}-models/(churn-model/sha256/{sha}\.onnx)$")
    match = expected.match(pin["MODEL_URI"])
    if not match:
        raise PinError(
            f"{source_file}: MODEL_URI must be s3://churn-{source}-models/churn-model/sha256/"
            f"<MODEL_SHA256>.onnx, got {pin['MODEL_URI']!r}"
        )
    target_uri = f"s3://churn-{target}-models/{match.group(1)}"
    changed = _write_model_pin(target_file, {**pin, "MODEL_URI": target_uri})
    return {
        "file": str(target_file.relative_to(root)),
        "source_file": str(source_file.relative_to(root)),
        "source_uri": pin["MODEL_URI"],
        "target_uri": target_uri,
        "sha256": sha,
        "version": pin["MODEL_VERSION"],
        "changed": str(changed).lower(),
    }


def copy_image(root: Path, source: str, target: str) -> dict[str, str]:
    """Copy the churn-api image digest of `source` to `target`."""
    _check_step(source, target)
    source_file = root / OVERLAYS / source / "kustomization.yaml"
    target_file = root / OVERLAYS / target / "kustomization.yaml"
    image, digest = read_image(source_file)
    changed = set_image(target_file, digest)
    return {
        "file": str(target_file.relative_to(root)),
        "source_file": str(source_file.relative_to(root)),
        "image": f"{image}@{digest}",
        "digest": digest,
        "changed": str(changed).lower(),
    }


# ----------------------------------------------------------------------------- platform pins


def _split_data(path: Path) -> tuple[str, str]:
    """The pins file before and from its `data:` line (the only lines a promotion edits)."""
    head, found, data = path.read_text().partition("\ndata:\n")
    if not found:
        raise PinError(f"{path}: no `data:` block")
    return head + found, data


def read_platform_pins(path: Path) -> dict[str, str]:
    """The `data:` of a cluster's pins ConfigMap: chart name -> version, and the revision."""
    pins = {m["key"]: m["value"].strip("'\"") for m in PIN_LINE.finditer(_split_data(path)[1])}
    if PLATFORM_REVISION not in pins or not COMMIT.match(pins[PLATFORM_REVISION]):
        raise PinError(f"{path}: needs `{PLATFORM_REVISION}: <40-hex commit>` under data")
    return pins


def chart_version(root: Path, app: str) -> str:
    """The chart version main declares for `app`: its ApplicationSet's first targetRevision.

    The pins component replaces `sources.0.targetRevision`, the chart's; a test holds every
    pinned ApplicationSet to having it first.
    """
    path = root / APPS / app / "applicationset.yaml"
    found = re.search(r"^\s*targetRevision: (\S+)$", path.read_text(), re.MULTILINE)
    if not found or "{{" in found[1]:
        raise PinError(f"{path}: the first targetRevision must be the chart's version")
    return found[1].strip("'\"")


def copy_platform(root: Path, source: str, target: str, revision: str) -> dict[str, str]:
    """Move `target`'s platform pins to what `source` runs; dev runs `revision` of main."""
    _check_step(source, target)
    target_file = root / CLUSTERS / target / "pins.yaml"
    current = read_platform_pins(target_file)
    if source == ENVIRONMENTS[0]:
        if not COMMIT.match(revision):
            raise PinError(f"--revision must be the 40-hex commit dev runs, got {revision!r}")
        source_file = root / APPS
        wanted = {app: chart_version(root, app) for app in current if app != PLATFORM_REVISION}
        wanted[PLATFORM_REVISION] = revision
    else:
        source_file = root / CLUSTERS / source / "pins.yaml"
        wanted = read_platform_pins(source_file)
        if set(wanted) != set(current):
            raise PinError(
                f"{source_file} and {target_file} pin different charts: "
                f"{sorted(set(wanted) ^ set(current))}"
            )
    head, data = _split_data(target_file)
    text = head + data
    new_text = head + PIN_LINE.sub(lambda m: f"  {m['key']}: {wanted[m['key']]}", data)
    if new_text != text:
        target_file.write_text(new_text)
    moved = [f"{k} {current[k]} -> {wanted[k]}" for k in sorted(wanted) if current[k] != wanted[k]]
    return {
        "file": str(target_file.relative_to(root)),
        "source_file": str(source_file.relative_to(root)),
        "revision": wanted[PLATFORM_REVISION],
        "moved": "; ".join(moved) or "nothing",
        "changed": str(new_text != text).lower(),
    }


# ----------------------------------------------------------------------------- workflows image


def set_workflows_image(path: Path, image: str) -> bool:
    """Set `IMAGE_DIGEST` in argo.py to the digest of `image`; return whether it changed.

    `image` is what the release pushed, `<registry>/churn-workflows@sha256:<64 hex>`; only its
    digest is written. The templates name `churn-workflows@<digest>`, and each cluster's
    ApplicationSets add that cluster's registry, keeping the digest.
    """
    name, _, digest = image.partition("@")
    if not IMAGE_REF.match(image) or not name.endswith("/churn-workflows"):
        raise PinError(f"image must be <registry>/churn-workflows@sha256:<64 hex>, got {image!r}")
    text = path.read_text()
    pattern = re.compile(r"^(IMAGE_DIGEST\b[^=\n]*=[ \t]*)(.+)$", re.MULTILINE)
    found = list(pattern.finditer(text))
    if len(found) != 1:
        raise PinError(f"{path}: expected one `IMAGE_DIGEST = ...` line, found {len(found)}")
    start, end = found[0].span(2)
    new_text = text[:start] + f'"{digest}"' + text[end:]
    if new_text == text:
        return False
    path.write_text(new_text)
    return True


# ----------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    parser.add_argument("--github-output", type=Path, help="append the summary as step outputs")
    sub = parser.add_subparsers(dest="command", required=True)

    image = sub.add_parser("set-image", help="set an overlay's churn-api image digest")
    image.add_argument("--env", required=True, choices=ENVIRONMENTS)
    image.add_argument(
        "--image", required=True, help="registry/repository (ECR) the digest was pushed to"
    )
    image.add_argument("--digest", required=True, help="sha256:<64 hex>")

    workflows = sub.add_parser("set-workflows-image", help="set the pipeline's IMAGE_DIGEST")
    workflows.add_argument("--image", required=True, help="registry/repository@sha256:<64 hex>")

    promote = sub.add_parser("promote", help="copy a pin from one environment to the next")
    promote.add_argument("--kind", required=True, choices=("model", "image", "platform"))
    promote.add_argument("--from", dest="source", required=True, choices=ENVIRONMENTS)
    promote.add_argument("--to", dest="target", required=True, choices=ENVIRONMENTS)
    promote.add_argument(
        "--revision", default="", help="platform from dev: the main commit dev runs (40 hex)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit 2 with a message naming the problem on a bad pin or argument."""
    args = _parser().parse_args(argv)
    root: Path = args.root
    try:
        if args.command == "set-image":
            file = root / OVERLAYS / args.env / "kustomization.yaml"
            check_image(args.image)
            changed = set_image(file, args.digest)
            summary = {
                "file": str(file.relative_to(root)),
                "image": f"{args.image}@{args.digest}",
                "changed": str(changed).lower(),
            }
        elif args.command == "set-workflows-image":
            file = root / WORKFLOWS_IMAGES_FILE
            changed = set_workflows_image(file, args.image)
            summary = {
                "file": str(file.relative_to(root)),
                "image": args.image,
                "changed": str(changed).lower(),
            }
        elif args.kind == "model":
            summary = copy_model(root, args.source, args.target)
        elif args.kind == "platform":
            summary = copy_platform(root, args.source, args.target, args.revision)
        else:
            summary = copy_image(root, args.source, args.target)
    except (PinError, FileNotFoundError) as error:
        print(f"pins: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, sort_keys=True))
    if args.github_output:
        with args.github_output.open("a") as out:
            out.writelines(f"{key}={value}\n" for key, value in sorted(summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
