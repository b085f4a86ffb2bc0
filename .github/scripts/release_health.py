"""Refuse to promote from an environment whose release of the pin is not reported Healthy.

Git says what should run; only the cluster knows whether it does. Argo CD's notifications
set a commit status on every revision it deploys, context `continuous-delivery/<app>`: success
once the Application is synced and Healthy (the Rollout finished its analysis), failure when
it turns Degraded (an abort). The promote workflow runs this before it copies a pin.

Steps:
1. Find the commit that last changed the source pin file on the promoted revision.
2. Walk the revision's history back to that commit, newest first. The newest commit with a
   status of the source Application's context decides: `success` lets the promotion go on.
3. Anything else refuses, naming why: a failure or a pending release, or no report at all
   since the pin changed (Argo CD has not deployed it yet).

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
from typing import Any

__all__ = ["GitHub", "Verdict", "context_for", "main", "release_health"]

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
        url = f"{self.base}{endpoint}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(  # noqa: S310 (the API URL is ours)
            url,
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.token}",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise HealthError(f"GitHub answered {exc.code} to GET {url}") from None
        except (OSError, ValueError) as exc:
            raise HealthError(f"cannot GET {url}: {exc}") from None

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


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when Healthy, 1 when not (saying why), 2 on a bad argument or API failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", default="https://api.github.com")
    parser.add_argument("--repository", required=True, help="owner/name")
    parser.add_argument("--revision", required=True, help="the commit being promoted from")
    parser.add_argument("--env", required=True, help="the source environment")
    parser.add_argument("--pin-file", required=True, help="the source pin file, repo-relative")
    args = parser.parse_args(argv)
    token = os.environ.get("GH_TOKEN", "")
    try:
        if not token:
            raise HealthError("GH_TOKEN is not set")
        github = GitHub(args.api_url, args.repository, token)
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
