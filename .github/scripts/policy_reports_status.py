"""Record whether dev's PolicyReports are clean, and refuse to promote when they are not.

Dev runs every policy in Audit: a violation there is a report, where staging and prod deny the
same thing at admission. The CronJob in dev (policies/ci/policy_reports_dispatch.py) sends a
repository_dispatch `policy-reports` with the revision dev runs and the verdict; the workflow
policy-reports.yaml runs `record`, which sets the commit status `policy-reports/<env>` on that
revision. promote.yaml runs `check`: walking the promoted revision's history newest first, the
newest commit with that status decides; `success` lets the promotion go on, anything else (a
failure, or no report at all within the history) refuses, naming why.

Standard library only, like release_health.py, whose GitHub client it shares; the token comes
from GH_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The sibling script, found through the path above.
from release_health import COMMIT, ENVIRONMENTS, GitHub, HealthError, Verdict

__all__ = ["check", "context_for", "main", "record"]


def context_for(environment: str) -> str:
    """The commit-status context the cluster's report sets for ``environment``."""
    return f"policy-reports/{environment}"


def _checked(environment: str, revision: str) -> None:
    if environment not in ENVIRONMENTS:
        raise HealthError(f"unknown environment {environment!r}; expected one of {ENVIRONMENTS}")
    if not COMMIT.match(revision):
        raise HealthError(f"revision must be a 40-hex commit, got {revision!r}")


def record(
    github: GitHub, environment: str, revision: str, *, clean: bool, summary: str, target_url: str
) -> None:
    """Set ``policy-reports/<environment>`` on ``revision``: success when clean."""
    _checked(environment, revision)
    github.post(
        f"/statuses/{revision}",
        {
            "state": "success" if clean else "failure",
            "context": context_for(environment),
            # GitHub keeps 140 characters of a description.
            "description": summary[:140],
            "target_url": target_url,
        },
    )


def check(github: GitHub, head: str, environment: str) -> Verdict:
    """Whether the newest report on ``head``'s history says ``environment`` is clean."""
    _checked(environment, head)
    context = context_for(environment)
    for commit in github.history(head):
        state = github.status(commit, context)
        if state == "success":
            return Verdict(True, f"{context} is clean on {commit[:12]}")
        if state is not None:
            return Verdict(False, f"{context} is {state} on {commit[:12]}: a policy fails there")
    return Verdict(
        False, f"{context} reported nothing on {head[:12]}'s history: is its CronJob running?"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--api-url", default="https://api.github.com")
    parser.add_argument("--repository", required=True, help="owner/name")
    sub = parser.add_subparsers(dest="command", required=True)
    gate = sub.add_parser("check", help="refuse unless the environment's reports are clean")
    gate.add_argument("--revision", required=True, help="the commit being promoted from")
    gate.add_argument("--env", required=True)
    mark = sub.add_parser("record", help="set the environment's status on the revision it runs")
    mark.add_argument("--env", required=True)
    mark.add_argument("--revision", required=True)
    mark.add_argument("--clean", required=True, choices=("true", "false"))
    mark.add_argument("--summary", default="")
    mark.add_argument("--target-url", default="")
    return parser


def main(argv: list[str] | None = None) -> int:
    """check: exit 0 when clean, 1 when not; both: 2 on a bad argument or API failure."""
    args = _parser().parse_args(argv)
    token = os.environ.get("GH_TOKEN", "")
    try:
        if not token:
            raise HealthError("GH_TOKEN is not set")
        github = GitHub(args.api_url, args.repository, token)
        if args.command == "record":
            clean = args.clean == "true"
            record(
                github,
                args.env,
                args.revision,
                clean=clean,
                summary=args.summary,
                target_url=args.target_url,
            )
            print(json.dumps({"environment": args.env, "revision": args.revision, "clean": clean}))
            return 0
        verdict = check(github, args.revision, args.env)
    except HealthError as error:
        print(f"policy-reports: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"clean": verdict.healthy, "reason": verdict.reason}))
    if not verdict.healthy:
        print(f"policy-reports: refusing to promote: {verdict.reason}", file=sys.stderr)
    return 0 if verdict.healthy else 1


if __name__ == "__main__":
    sys.exit(main())
