"""Promote: propose a new pin as a pull request that edits one file, model.yaml or shadow.yaml.

Steps: read the target branch's pins (strictly parsed: a hand-broken file stops
here, naming it), write the new pin, and propose it. Pinned as the model
(``--pin-as model``), the candidate replaces what serves; pinned as the shadow
(``--pin-as shadow``), churn-api scores it beside the model on the same
requests, never in its place (branch ``shadow/…``, label ``shadow``). With
GitHub credentials and ``GITHUB_REPOSITORY`` set, through GitHub's REST API: a
branch from the target branch, one commit changing the file, a pull request
whose body is the evidence.

Live shadow evidence: a candidate pinned as the model that is the environment's
current shadow (the same sha256 as ``shadow.yaml`` at the target branch) has been
scored on live traffic beside the serving model. Its pull request then carries
churn-monitor's latest champion-vs-challenger numbers, read from the prediction
store (``--store-url``, default ``$CHURN_CAPTURE_URL``); without a store, without
numbers or with the store unreachable the body says "No live shadow evidence"
and why, and the promotion goes on.

The credentials are a GitHub App's (``GITHUB_APP_ID``, ``GITHUB_APP_INSTALLATION_ID``,
``GITHUB_APP_PRIVATE_KEY``, what the cluster's Secret ``churn-workflows-github``
holds): each run signs a JWT with the App's key and exchanges it for an
installation token that expires within the hour, limited to this repository's
contents and pull requests, so no long-lived token exists. ``GITHUB_TOKEN``
instead is for runs by hand (a person's own short-lived token); the App wins
when both are set. Otherwise a local branch and commit in the given git repository, made
with git plumbing (a temporary index, ``commit-tree``, ``update-ref``), so the
checked-out tree and the current branch are never touched. Nothing ever pushes
or commits to the target branch itself.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
from churn_store.prediction_store import StoreError

from churn_workflows import PipelineError, Unreachable, exit_code
from churn_workflows.api_change import api_changes, markdown, title_suffix
from churn_workflows.champion_challenger import latest_champion_challenger
from churn_workflows.lineage import add_pull_request
from churn_workflows.pin import (
    PIN_KINDS,
    Pin,
    PinKind,
    parse_pin,
    parse_shadow_pin,
    pin_path,
    render_pin,
    render_shadow_pin,
)

__all__ = [
    "GitHub",
    "Promotion",
    "default_branch",
    "git",
    "installation_token",
    "main",
    "promote",
    "read_pin_git",
    "read_target_pin",
    "shadow_evidence",
]

_IDENTITY = ("churn-workflows", "churn-workflows@users.noreply.github.com")
_APP_VARIABLES = ("GITHUB_APP_ID", "GITHUB_APP_INSTALLATION_ID", "GITHUB_APP_PRIVATE_KEY")
# GitHub refuses an App JWT that lives longer than 10 minutes or is issued in its future:
# issued a minute back (clock drift), valid for nine.
_JWT_BACKDATE_SECONDS = 60
_JWT_LIFETIME_SECONDS = 540
_DEFAULT_API = "https://api.github.com"


def _api_url(api_url: str | None) -> str:
    return (api_url or os.environ.get("GITHUB_API_URL") or _DEFAULT_API).rstrip("/")


def installation_token(
    app_id: str,
    installation_id: str,
    private_key: str,
    repository: str,
    *,
    api_url: str | None = None,
    now: float | None = None,
) -> str:
    """An installation token of the GitHub App, scoped to ``repository``'s contents and PRs.

    The App authenticates with a JWT it signs (RS256, issuer the App id), then
    ``POST /app/installations/<id>/access_tokens`` returns a token that expires within an hour.
    """
    if not app_id.strip().isdigit():
        raise PipelineError(f"GITHUB_APP_ID must be the App's numeric id, got {app_id!r}")
    if not installation_id.strip().isdigit():
        raise PipelineError(
            f"GITHUB_APP_INSTALLATION_ID must be a numeric id, got {installation_id!r}"
        )
    issued = int(time.time() if now is None else now) - _JWT_BACKDATE_SECONDS
    claims = {"iat": issued, "exp": issued + _JWT_LIFETIME_SECONDS, "iss": app_id.strip()}
    try:
        assertion = jwt.encode(claims, private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise PipelineError(
            f"GITHUB_APP_PRIVATE_KEY is not the App's PEM private key: {type(exc).__name__}"
        ) from None
    url = f"{_api_url(api_url)}/app/installations/{installation_id.strip()}/access_tokens"
    body = {
        "repositories": [repository.split("/", 1)[-1]],
        "permissions": {"contents": "write", "pull_requests": "write"},
    }
    request = urllib.request.Request(  # noqa: S310 - the URL is https or a test's localhost
        url,
        method="POST",
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {assertion}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            answer = json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        kind = Unreachable if exc.code >= 500 else PipelineError
        raise kind(
            f"GitHub App {app_id.strip()} could not get a token for installation "
            f"{installation_id.strip()}: HTTP {exc.code} {exc.reason}"
        ) from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise Unreachable(f"GitHub POST {url}: {getattr(exc, 'reason', exc)}") from None
    token = answer.get("token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise PipelineError(f"GitHub POST {url} answered no token")
    return token


@dataclass(frozen=True)
class Promotion:
    """What was proposed: a PR URL, or a local branch and commit."""

    kind: str  # "pull-request", "local-branch" or "unchanged"
    branch: str
    base: str
    commit: str
    url: str | None
    message: str


def git(repo: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    """Run git in ``repo`` with the pipeline's identity; a failure names the command."""
    cmd = ["git", "-c", f"user.name={_IDENTITY[0]}", "-c", f"user.email={_IDENTITY[1]}", *args]
    try:
        done = subprocess.run(  # noqa: S603 - fixed executable, arguments from this module
            cmd,
            cwd=repo,
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **(env or {})},
        )
    except subprocess.CalledProcessError as exc:
        raise PipelineError(f"{repo}: git {' '.join(args)} failed: {exc.stderr.strip()}") from None
    except FileNotFoundError:
        raise PipelineError("git is not installed") from None
    return done.stdout.strip()


def default_branch(repo: Path) -> str:
    """The repository's target branch: origin's HEAD when known, else the current branch."""
    try:
        ref = git(repo, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD")
        return ref.removeprefix("refs/remotes/origin/")
    except PipelineError:
        return git(repo, "symbolic-ref", "--quiet", "--short", "HEAD")


def read_pin_git(repo: Path, ref: str, environment: str) -> Pin:
    """The pin of ``environment`` at ``ref`` in a local repository."""
    path = pin_path(environment)
    text = git(repo, "show", f"{ref}:{path}")
    return parse_pin(text, f"{path} at {ref}")


class GitHub:
    """The few GitHub REST calls a promotion needs (``GITHUB_API_URL`` overrides the host)."""

    def __init__(self, repository: str, token: str, api_url: str | None = None) -> None:
        self.repository = repository
        self.token = token
        self.api = _api_url(api_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GitHub | None:
        """A client when ``GITHUB_REPOSITORY`` and credentials are set: the GitHub App's
        (all three ``GITHUB_APP_*``), else ``GITHUB_TOKEN``; None without either."""
        env = os.environ if environ is None else environ
        repository = env.get("GITHUB_REPOSITORY")
        app = {name: env.get(name, "") for name in _APP_VARIABLES}
        given = [name for name, value in app.items() if value]
        if given and len(given) < len(app):
            missing = ", ".join(name for name in _APP_VARIABLES if name not in given)
            raise PipelineError(f"GitHub App credentials are incomplete: {missing} not set")
        if not repository:
            return None
        if given:
            minted = installation_token(
                app["GITHUB_APP_ID"],
                app["GITHUB_APP_INSTALLATION_ID"],
                app["GITHUB_APP_PRIVATE_KEY"],
                repository,
                api_url=env.get("GITHUB_API_URL"),
            )
            return cls(repository, minted)
        token = env.get("GITHUB_TOKEN")
        return cls(repository, token) if token else None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """One request; returns status and JSON, raising on anything but 2xx and 422."""
        url = f"{self.api}/repos/{self.repository}{path}"
        request = urllib.request.Request(  # noqa: S310 - the URL is https or a test's localhost
            url,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code == 422:
                return exc.code, json.loads(exc.read() or b"null")
            kind = Unreachable if exc.code >= 500 else PipelineError
            raise kind(f"GitHub {method} {url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise Unreachable(f"GitHub {method} {url}: {getattr(exc, 'reason', exc)}") from None

    def default_branch(self) -> str:
        """The repository's default branch."""
        _, repo = self.call("GET", "")
        return str(repo["default_branch"])

    def read_file(self, path: str, ref: str) -> tuple[str, str]:
        """A file's text and blob sha at ``ref``."""
        _, data = self.call("GET", f"/contents/{quote(path)}?ref={quote(ref)}")
        return base64.b64decode(data["content"]).decode(), str(data["sha"])


def read_target_pin(environment: str, *, repo: Path | None = None, base: str | None = None) -> Pin:
    """The pin the target environment runs: from GitHub when configured, else a local repo."""
    path = pin_path(environment)
    github = GitHub.from_env()
    if github is not None:
        ref = base or github.default_branch()
        text, _ = github.read_file(path, ref)
        return parse_pin(text, f"{github.repository}:{path} at {ref}")
    local = repo or Path.cwd()
    return read_pin_git(local, base or default_branch(local), environment)


def _title(environment: str, pin: Pin, suffix: str = "", pin_as: PinKind = "model") -> str:
    if pin_as == "shadow":
        return f"Shadow churn-model version {pin.version} in {environment}{suffix}"
    return f"Promote churn-model version {pin.version} to {environment}{suffix}"


def _proposal(running: Pin, pin: Pin, body: str) -> tuple[str, str]:
    """The title suffix and body: an API change (the contracts' diff) heads both."""
    changes = api_changes(running, pin)
    return title_suffix(changes), markdown(changes) + body


def shadow_evidence(store_url: str | None, candidate: Pin, serving: Pin) -> str:
    """The PR body's live evidence for a candidate that ran as the shadow: a table, or one line."""
    if not store_url:
        return "No live shadow evidence: no prediction store configured.\n"
    try:
        found = latest_champion_challenger(store_url, candidate.version, serving.version)
    except StoreError as exc:
        reason = " ".join(str(exc).split())  # one line: the driver's message spans several
        return f"No live shadow evidence: the prediction store could not be read ({reason}).\n"
    if found is None:
        return (
            "No live shadow evidence: churn-monitor has no labelled predictions scored by "
            f"version {candidate.version} as the shadow.\n"
        )
    return found.to_markdown()


@dataclass(frozen=True)
class _Change:
    """The one-file change a promotion proposes, before it is written anywhere."""

    path: str
    text: str
    branch: str
    title: str
    body: str
    labels: tuple[str, ...]


def _plan(
    read: Callable[[str], tuple[str, str]],
    environment: str,
    pin: Pin,
    body: str,
    *,
    target: str,
    pin_as: PinKind,
    store_url: str | None,
) -> _Change | Promotion:
    """The change for ``pin_as`` at ``target``, or an "unchanged" result.

    ``read(path)`` gives a file's text at the target and where it was read (for
    errors). The serving model's pin is read either way: the API change is
    measured against what serves, since a shadow scores the same requests. So
    is the shadow's: a model pin of the current shadow brings its live evidence.
    """
    if pin_as not in PIN_KINDS:
        raise PipelineError(f"pin-as must be one of {', '.join(PIN_KINDS)}, got {pin_as!r}")
    running = parse_pin(*read(pin_path(environment)))
    path = pin_path(environment, pin_as)
    shadow = parse_shadow_pin(*read(pin_path(environment, "shadow")))
    prefix = "shadow" if pin_as == "shadow" else "promote"
    branch = f"{prefix}/churn-model-{environment}-v{pin.version}"
    if branch == target:
        raise PipelineError(f"refusing to write to the target branch {target}")
    if pin_as == "shadow":
        if shadow is not None and shadow.sha256 == pin.sha256:
            return Promotion(
                "unchanged",
                target,
                target,
                "",
                None,
                f"{path} at {target} already pins this model as the shadow "
                f"(version {shadow.version})",
            )
        text = render_shadow_pin(pin)
    else:
        if running == pin:
            return Promotion(
                "unchanged", target, target, "", None, f"{path} at {target} already pins this model"
            )
        text = render_pin(pin)
        if shadow is not None and shadow.sha256 == pin.sha256:
            body = body.rstrip("\n") + "\n\n" + shadow_evidence(store_url, pin, running)
    suffix, body = _proposal(running, pin, body)
    title = _title(environment, pin, suffix, pin_as)
    labels = ("shadow" if pin_as == "shadow" else "promotion", environment)
    return _Change(path, text, branch, title, body, labels)


def _promote_github(
    github: GitHub,
    environment: str,
    pin: Pin,
    body: str,
    *,
    base: str | None,
    pin_as: PinKind,
    store_url: str | None,
) -> Promotion:
    target = base or github.default_branch()
    blobs: dict[str, str] = {}

    def read(path: str) -> tuple[str, str]:
        text, blobs[path] = github.read_file(path, target)
        return text, f"{github.repository}:{path} at {target}"

    change = _plan(read, environment, pin, body, target=target, pin_as=pin_as, store_url=store_url)
    if isinstance(change, Promotion):
        return change
    path, branch, blob = change.path, change.branch, blobs[change.path]
    _, head = github.call("GET", f"/git/ref/heads/{quote(target)}")
    status, _ = github.call(
        "POST", "/git/refs", {"ref": f"refs/heads/{branch}", "sha": head["object"]["sha"]}
    )
    if status == 422:  # the branch exists from an earlier attempt: update its file below
        _, current = github.call("GET", f"/contents/{quote(path)}?ref={quote(branch)}")
        blob = str(current["sha"])
    _, commit = github.call(
        "PUT",
        f"/contents/{quote(path)}",
        {
            "message": change.title,
            "content": base64.b64encode(change.text.encode()).decode(),
            "sha": blob,
            "branch": branch,
        },
    )
    status, pull = github.call(
        "POST",
        "/pulls",
        {"title": change.title, "head": branch, "base": target, "body": change.body},
    )
    if status == 422:  # a PR for this branch is already open
        owner = github.repository.split("/")[0]
        _, pulls = github.call("GET", f"/pulls?head={quote(owner)}:{quote(branch)}&state=open")
        if not pulls:
            raise PipelineError(f"GitHub refused the pull request for {branch}")
        pull = pulls[0]
    # Labels live on the pull request's issue; GitHub creates a label that does not exist yet.
    github.call("POST", f"/issues/{pull['number']}/labels", {"labels": list(change.labels)})
    return Promotion(
        "pull-request",
        branch,
        target,
        str(commit["commit"]["sha"]) if commit else "",
        str(pull["html_url"]),
        f"opened pull request {pull['html_url']}",
    )


def _promote_local(
    repo: Path,
    environment: str,
    pin: Pin,
    body: str,
    *,
    base: str | None,
    pin_as: PinKind,
    store_url: str | None,
) -> Promotion:
    target = base or default_branch(repo)

    def read(path: str) -> tuple[str, str]:
        return git(repo, "show", f"{target}:{path}"), f"{path} at {target}"

    change = _plan(read, environment, pin, body, target=target, pin_as=pin_as, store_url=store_url)
    if isinstance(change, Promotion):
        return change
    blob = git(repo, "hash-object", "-w", "--stdin", stdin=change.text)
    with tempfile.TemporaryDirectory() as scratch:
        # A private index: the repository's own index and checkout stay as they are.
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        git(repo, "read-tree", target, env=index)
        git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{change.path}", env=index)
        tree = git(repo, "write-tree", env=index)
    parent = git(repo, "rev-parse", f"{target}^{{commit}}")
    message = f"{change.title}\n\n{change.body}"
    commit = git(repo, "commit-tree", tree, "-p", parent, "-F", "-", stdin=message)
    git(repo, "update-ref", f"refs/heads/{change.branch}", commit)
    return Promotion(
        "local-branch",
        change.branch,
        target,
        commit,
        None,
        f"no GITHUB_TOKEN/GITHUB_REPOSITORY: wrote local branch {change.branch} ({commit[:12]}) "
        f"in {repo}",
    )


def promote(
    environment: str,
    pin: Pin,
    body: str,
    *,
    repo: Path | None = None,
    base: str | None = None,
    pin_as: PinKind = "model",
    store_url: str | None = None,
) -> Promotion:
    """Propose ``pin`` for ``environment`` with ``body`` as the evidence.

    ``pin_as`` "model" proposes it as the served model (``model.yaml``), "shadow"
    as the challenger scored beside it (``shadow.yaml``). ``store_url`` is the
    prediction store the live shadow evidence comes from.
    """
    github = GitHub.from_env()
    if github is not None:
        return _promote_github(
            github, environment, pin, body, base=base, pin_as=pin_as, store_url=store_url
        )
    local = repo or Path.cwd()
    return _promote_local(
        local, environment, pin, body, base=base, pin_as=pin_as, store_url=store_url
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Open the promotion PR (the ``churn-promote`` template)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--environment", required=True)
    parser.add_argument("--uri", required=True, help="MODEL_URI")
    parser.add_argument("--sha256", required=True, help="MODEL_SHA256")
    parser.add_argument("--version", required=True, help="MODEL_VERSION")
    parser.add_argument(
        "--pin-as",
        choices=PIN_KINDS,
        default="model",
        help="model: the served model (model.yaml); shadow: the challenger (shadow.yaml)",
    )
    parser.add_argument("--evidence", default="", help="the PR body (Markdown)")
    parser.add_argument(
        "--store-url",
        default=os.environ.get("CHURN_CAPTURE_URL") or None,
        help="the prediction store of the live shadow evidence (default: $CHURN_CAPTURE_URL; "
        "in the cluster from the optional Secret churn-predictions-db)",
    )
    parser.add_argument("--repo", type=Path, default=None, help="local repository (no GitHub)")
    parser.add_argument("--base", default=None, help="target branch (default: the default branch)")
    args = parser.parse_args(argv)
    try:
        pin = Pin(uri=args.uri, sha256=args.sha256, version=args.version)
        parse_pin(render_pin(pin), "the requested pin")
        result = promote(
            args.environment,
            pin,
            args.evidence,
            repo=args.repo,
            base=args.base,
            pin_as=args.pin_as,
            store_url=args.store_url,
        )
        if result.url:
            add_pull_request(pin.uri, result.url)
    except PipelineError as exc:
        print(f"promote: {exc}", file=sys.stderr)
        return exit_code(exc)
    print(json.dumps(asdict(result), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
