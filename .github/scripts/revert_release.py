"""Put back in Git the release an environment aborted, so Git says again what runs.

When a churn-api Rollout aborts, Argo Rollouts keeps the stable version serving while Git
still pins the rejected one. The revert workflow (revert-aborted-release.yaml) runs this on a
checkout of main, then opens the pull request with the one file it changed.

Steps:
1. Walk the history of the environment's two pin files, newest first: `model.yaml` (the model
   pin) and the `images:` digest of `kustomization.yaml`. The newest commit that changed a pin
   is the release that aborted.
2. Skip, saying why, when there is nothing to put back: that commit is newer than the abort
   (a fix is already in Git), the pin has changed again since, or the previous pin is the
   bootstrap pin (an environment's first release has no earlier one).
3. Otherwise write the previous pin into the file as it is on main: one pin, one file.

Prints a JSON summary; `--github-output FILE` also appends it as step outputs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The sibling script, found through the path above.
from pins import (
    BOOTSTRAP_SHA256,
    ENVIRONMENTS,
    OVERLAYS,
    PinError,
    _write_model_pin,
    read_image,
    read_model_pin,
    set_image,
)

__all__ = ["Plan", "ReleaseChange", "apply", "main", "plan"]

BOOTSTRAP_DIGEST = f"sha256:{BOOTSTRAP_SHA256}"


@dataclass(frozen=True)
class ReleaseChange:
    """One commit that changed one pin of an environment."""

    commit: str
    committed_at: str
    kind: str  # "model" or "image"
    file: str
    introduced: str
    previous: str


@dataclass(frozen=True)
class Plan:
    """What to put back, or why nothing: ``change`` is None when ``reason`` says why."""

    environment: str
    reason: str
    change: ReleaseChange | None = None


def _git(root: Path, *args: str) -> str:
    return subprocess.run(  # noqa: S603 - git on our own checkout
        ["git", *args],  # noqa: S607 - the runner's git
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _show(root: Path, commit: str, path: str) -> str | None:
    result = subprocess.run(  # noqa: S603 - git on our own checkout
        ["git", "show", f"{commit}:{path}"],  # noqa: S607 - the runner's git
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None


def _pin_value(kind: str, text: str | None) -> str | None:
    """The pin a file's text holds: the model's MODEL_SHA256 / URI / version, or the digest."""
    if text is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "pin.yaml"
        path.write_text(text)
        try:
            if kind == "model":
                return json.dumps(read_model_pin(path), sort_keys=True)
            # The digest alone: the entry's name is no pin (it once named the registry too).
            return read_image(path)[1]
        except PinError:
            return None


def _files(environment: str) -> dict[str, str]:
    overlay = OVERLAYS / environment
    return {"model": str(overlay / "model.yaml"), "image": str(overlay / "kustomization.yaml")}


def _is_bootstrap(kind: str, value: str) -> bool:
    if kind == "model":
        return bool(json.loads(value)["MODEL_SHA256"] == BOOTSTRAP_SHA256)
    return value == BOOTSTRAP_DIGEST


def latest_change(root: Path, environment: str) -> ReleaseChange | None:
    """The newest commit on HEAD that changed the environment's model pin or image digest."""
    files = _files(environment)
    log = _git(root, "log", "--format=%H %cI", "HEAD", "--", *files.values())
    for line in log.splitlines():
        commit, committed_at = line.split(" ", 1)
        for kind, file in files.items():
            after = _pin_value(kind, _show(root, commit, file))
            before = _pin_value(kind, _show(root, f"{commit}^", file))
            if after is not None and before is not None and after != before:
                return ReleaseChange(commit, committed_at, kind, file, after, before)
    return None


def plan(root: Path, environment: str, aborted_at: datetime) -> Plan:
    """Decide what to put back after ``environment`` aborted a release at ``aborted_at``."""
    if environment not in ENVIRONMENTS:
        raise PinError(f"unknown environment {environment!r}; expected one of {ENVIRONMENTS}")
    if aborted_at.tzinfo is None:
        raise PinError(f"the abort time must carry a time zone, got {aborted_at.isoformat()}")
    change = latest_change(root, environment)
    if change is None:
        return Plan(environment, "no pin of this environment was ever changed: nothing to revert")
    if datetime.fromisoformat(change.committed_at) > aborted_at:
        return Plan(
            environment,
            f"{change.commit[:12]} changed the {change.kind} after the abort: a newer "
            "release is already in Git",
        )
    current = _pin_value(change.kind, (root / change.file).read_text())
    if current != change.introduced:
        return Plan(environment, f"the {change.kind} pin changed again since {change.commit[:12]}")
    if _is_bootstrap(change.kind, change.previous):
        return Plan(
            environment,
            f"before {change.commit[:12]} the {change.kind} was the bootstrap pin: the first "
            "release has no earlier one to go back to",
        )
    return Plan(environment, f"revert the {change.kind} set by {change.commit[:12]}", change)


def apply(root: Path, decided: Plan) -> bool:
    """Write the previous pin of ``decided`` into its file; return whether it changed."""
    change = decided.change
    if change is None:
        return False
    path = root / change.file
    if change.kind == "model":
        return _write_model_pin(path, json.loads(change.previous))
    return set_image(path, change.previous)


def main(argv: list[str] | None = None) -> int:
    """Plan and apply the revert; exit 2 naming the problem on a bad argument or pin file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    parser.add_argument("--env", required=True, help="the environment whose Rollout aborted")
    parser.add_argument("--aborted-at", required=True, help="ISO 8601 time of the abort")
    parser.add_argument("--github-output", type=Path, help="append the summary as step outputs")
    args = parser.parse_args(argv)
    try:
        aborted_at = datetime.fromisoformat(args.aborted_at.replace("Z", "+00:00"))
    except ValueError:
        print(f"revert: --aborted-at is not an ISO 8601 time: {args.aborted_at!r}", file=sys.stderr)
        return 2
    try:
        decided = plan(args.root, args.env, aborted_at)
        changed = apply(args.root, decided)
    except (PinError, subprocess.CalledProcessError) as error:
        print(f"revert: {error}", file=sys.stderr)
        return 2
    summary: dict[str, str] = {
        "environment": decided.environment,
        "reason": decided.reason,
        "revert": str(changed).lower(),
    }
    if decided.change is not None:
        summary |= {key: str(value) for key, value in asdict(decided.change).items()}
        summary["short"] = decided.change.commit[:12]
    print(json.dumps(summary, indent=2, sort_keys=True))
    if args.github_output:
        with args.github_output.open("a") as out:
            out.writelines(f"{key}={value}\n" for key, value in sorted(summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
