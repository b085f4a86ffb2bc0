"""Record whether an environment runs its pins Healthy, and refuse to promote when it does not.

Git says what should run; only the cluster knows whether it does. When churn-api's Rollout
completes a release or aborts one, Argo Rollouts notifies GitHub (a repository_dispatch), and
the release-health workflow runs `record`: the commit that last changed the environment's model
pin or image digest gets the status `continuous-delivery/churn-api-<env>`, success or failure.
The promote workflow runs `check` before it copies a pin.

`record`: find that commit in the checkout (revert_release.latest_change), skip it when it was
committed after the event (a newer release is on its way), and set the status.

`check`:
1. Find the commit that last changed the source pin file on the promoted revision.
2. Walk the revision's history back to that commit, newest first. The newest commit with a
   status of the source environment's context decides: `success` lets the promotion go on.
3. Anything else refuses, naming why: a failed release, or no report at all since the pin
   changed (the environment has not released it yet).

Standard library only, like pins.py; the token comes from GH_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The sibling script, found through the path above.
from revert_release import latest_change

__all__ = ["GitHub", "Verdict", "context_for", "main", "record", "release_health"]

ENVIRONMENTS = ("dev", "staging", "prod")
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
# How far back a pin may lie behind the promoted revision, in commits.
HISTORY = 300


class HealthError(Exception):
    """GitHub cannot be asked, or an argument is malformed."""


@dataclass(frozen=True)
class Verdict:
    """Whether the source environment runs the pin Healthy, and why."""

    healthy: bool
    reason: str


def context_for(environment: str) -> str:
    """The commit-status context Argo CD sets for churn-api in ``environment``."""
    return f"continuous-delivery/churn-api-{environment}"


class GitHub:
    """The few REST calls the gate makes, against ``api_url`` (a fake one in tests)."""

    def __init__(self, api_url: str, repository: str, token: str) -> None:
        if not REPOSITORY.match(repository):
            raise HealthError(f"repository must be owner/name, got {repository!r}")
        self.base = f"{api_url.rstrip('/')}/repos/{repository}"
        self.token = token

    def get(self, endpoint: str, **query: str | int) -> Any:
        return self._call("GET", f"{self.base}{endpoint}?{urllib.parse.urlencode(query)}")

    def post(self, endpoint: str, body: dict[str, str]) -> Any:
        return self._call("POST", f"{self.base}{endpoint}", json.dumps(body).encode())

    def _call(self, method: str, url: str, data: bytes | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 (the API URL is ours)
            url,
            data=data,
            method=method,
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise HealthError(f"GitHub answered {exc.code} to {method} {url}") from None
        except (OSError, ValueError) as exc:
            raise HealthError(f"cannot {method} {url}: {exc}") from None

    def pin_commit(self, head: str, path: str) -> str | None:
        found = self.get("/commits", sha=head, path=path, per_page=1)
        return str(found[0]["sha"]) if found else None

    def history(self, head: str) -> list[str]:
        commits: list[str] = []
        page = 1
        while len(commits) < HISTORY:
            found = self.get("/commits", sha=head, per_page=100, page=page)
            commits += [str(c["sha"]) for c in found]
            if len(found) < 100:
                break
            page += 1
        return commits

    def status(self, commit: str, context: str) -> str | None:
        """The newest state of ``context`` on ``commit``, or None when it has none."""
        for status in self.get(f"/commits/{commit}/statuses", per_page=100):
            if status.get("context") == context:
                return str(status["state"])
        return None


def release_health(github: GitHub, head: str, environment: str, pin_file: str) -> Verdict:
    """Decide whether ``environment`` runs the pin of ``pin_file`` at ``head`` Healthy."""
    if environment not in ENVIRONMENTS:
        raise HealthError(f"unknown environment {environment!r}; expected one of {ENVIRONMENTS}")
    if not COMMIT.match(head):
        raise HealthError(f"revision must be a 40-hex commit, got {head!r}")
    context = context_for(environment)
    pin = github.pin_commit(head, pin_file)
    if pin is None:
        return Verdict(False, f"no commit on {head[:12]} ever set {pin_file}")
    for commit in github.history(head):
        state = github.status(commit, context)
        if state == "success":
            return Verdict(True, f"{context} is Healthy on {commit[:12]}, with {pin[:12]}'s pin")
        if state is not None:
            return Verdict(False, f"{context} is {state} on {commit[:12]}: not Healthy")
        if commit == pin:
            break
    return Verdict(
        False,
        f"{context} reported nothing since {pin[:12]} set {pin_file}: "
        f"{environment} has not deployed it Healthy yet",
    )


def record(
    github: GitHub, root: Path, environment: str, *, healthy: bool, at: datetime, target_url: str
) -> str | None:
    """Set the environment's status on its newest pin commit; None when skipped as too new."""
    if environment not in ENVIRONMENTS:
        raise HealthError(f"unknown environment {environment!r}; expected one of {ENVIRONMENTS}")
    if at.tzinfo is None:
        raise HealthError(f"the event time must carry a time zone, got {at.isoformat()}")
    change = latest_change(root, environment)
    if change is None:
        raise HealthError(f"no pin of {environment} was ever changed in {root}")
    if datetime.fromisoformat(change.committed_at) > at:
        return None
    github.post(
        f"/statuses/{change.commit}",
        {
            "state": "success" if healthy else "failure",
            "context": context_for(environment),
            "description": f"{environment} {'runs' if healthy else 'aborted'} this {change.kind}",
            "target_url": target_url,
        },
    )
    return change.commit


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", default="https://api.github.com")
    parser.add_argument("--repository", required=True, help="owner/name")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="refuse unless the source runs the pin Healthy")
    check.add_argument("--revision", required=True, help="the commit being promoted from")
    check.add_argument("--env", required=True, help="the source environment")
    check.add_argument("--pin-file", required=True, help="the source pin file, repo-relative")
    mark = sub.add_parser("record", help="set the environment's status on its newest pin commit")
    mark.add_argument("--root", type=Path, default=Path("."), help="checkout of the revision")
    mark.add_argument("--env", required=True)
    mark.add_argument("--outcome", required=True, choices=("completed", "aborted"))
    mark.add_argument("--at", required=True, help="ISO 8601 time of the Rollout's event")
    mark.add_argument("--target-url", default="", help="where the status links")
    return parser


def main(argv: list[str] | None = None) -> int:
    """check: exit 0 when Healthy, 1 when not; both: 2 on a bad argument or API failure."""
    args = _parser().parse_args(argv)
    token = os.environ.get("GH_TOKEN", "")
    try:
        if not token:
            raise HealthError("GH_TOKEN is not set")
        github = GitHub(args.api_url, args.repository, token)
        if args.command == "record":
            try:
                at = datetime.fromisoformat(args.at.replace("Z", "+00:00"))
            except ValueError:
                raise HealthError(f"--at is not an ISO 8601 time: {args.at!r}") from None
            healthy = args.outcome == "completed"
            commit = record(
                github, args.root, args.env, healthy=healthy, at=at, target_url=args.target_url
            )
            print(json.dumps({"environment": args.env, "healthy": healthy, "commit": commit}))
            return 0
        verdict = release_health(github, args.revision, args.env, args.pin_file)
    except HealthError as error:
        print(f"release-health: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"healthy": verdict.healthy, "reason": verdict.reason}))
    if not verdict.healthy:
        print(f"release-health: refusing to promote: {verdict.reason}", file=sys.stderr)
    return 0 if verdict.healthy else 1


if __name__ == "__main__":
    sys.exit(main())
