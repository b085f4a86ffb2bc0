"""Promote: a local branch made without touching the checkout, or a PR through GitHub's API.

GitHub cannot be reached from tests, so ``FakeGitHub`` stands in for it: a thin
HTTP server on 127.0.0.1 that keeps branches as dicts of files and answers the
five REST calls the step makes, the way GitHub documents them, plus the GitHub
App's token exchange: it verifies the App's JWT with the App's public key and
hands out the one token the other calls accept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import jwt
import pytest
from churn_store.prediction_store import open_store
from churn_workflows import PipelineError
from churn_workflows.champion_challenger import ChampionChallenger
from churn_workflows.pin import (
    ENVIRONMENTS,
    PIN_KINDS,
    Pin,
    parse_pin,
    parse_shadow_pin,
    pin_path,
    render_pin,
    render_shadow_pin,
)
from churn_workflows.steps.promote import (
    GitHub,
    git,
    main,
    promote,
    read_pin_git,
    read_target_pin,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "libs" / "churn-store" / "tests"))
from store_testing import STORE_BACKENDS, store_database

REPO_ROOT = Path(__file__).resolve().parents[2]
PIN = Pin("s3://churn-dev-models/churn-model/sha256/" + "b" * 64 + ".onnx", "b" * 64, "4")
APP_ID, INSTALLATION_ID = "123456", "7890"


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# One key pair for the module: RSA generation is slow enough to share.
APP_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeGitHub(ThreadingHTTPServer):
    """Stands in for api.github.com: branches as {path: text}, pull requests as a list."""

    def __init__(self, repository: str, files: dict[str, str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.repository = repository
        self.branches: dict[str, dict[str, str]] = {"main": dict(files)}
        self.pulls: list[dict[str, Any]] = []
        self.labels: dict[int, list[str]] = {}
        self.calls: list[str] = []
        # The GitHub App: its public key, and what each token request asked for.
        self.app_key = APP_KEY.public_key()
        self.token_requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeGitHub

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _installation_token(self) -> None:
        """POST /app/installations/<id>/access_tokens: the App's JWT for a token."""
        gh = self.server
        assertion = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(
                assertion,
                gh.app_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
            )
        except jwt.PyJWTError as exc:
            return self._send(401, {"message": f"A JSON web token could not be decoded: {exc}"})
        if claims["iss"] != APP_ID or claims["exp"] - claims["iat"] > 600:
            return self._send(401, {"message": "'Issuer' claim or expiry is invalid"})
        installation = self.path.split("/")[3]
        if installation != INSTALLATION_ID:
            return self._send(404, {"message": "Not Found"})
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        gh.token_requests.append(body)
        return self._send(201, {"token": "t0ken", "expires_at": "2099-01-01T00:00:00Z"})

    def _route(self, method: str) -> None:
        gh = self.server
        if method == "POST" and re.fullmatch(r"/app/installations/[^/]+/access_tokens", self.path):
            return self._installation_token()
        if self.headers.get("Authorization") != "Bearer t0ken":
            return self._send(401, {"message": "Bad credentials"})
        url = urlparse(self.path)
        prefix = f"/repos/{gh.repository}"
        path = unquote(url.path.removeprefix(prefix))
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        gh.calls.append(f"{method} {path}")
        if method == "GET" and path == "":
            return self._send(200, {"default_branch": "main"})
        if path.startswith("/contents/"):
            file = path.removeprefix("/contents/")
            if method == "GET":
                text = gh.branches[query["ref"]][file]
                sha = hashlib.sha1(text.encode()).hexdigest()
                return self._send(
                    200, {"content": base64.b64encode(text.encode()).decode(), "sha": sha}
                )
            files = gh.branches[body["branch"]]
            if body["sha"] != hashlib.sha1(files[file].encode()).hexdigest():
                return self._send(409, {"message": "sha does not match"})
            files[file] = base64.b64decode(body["content"]).decode()
            return self._send(200, {"commit": {"sha": "c" * 40, "message": body["message"]}})
        if method == "GET" and path.startswith("/git/ref/heads/"):
            return self._send(200, {"object": {"sha": "a" * 40}})
        if method == "POST" and path == "/git/refs":
            name = body["ref"].removeprefix("refs/heads/")
            if name in gh.branches:
                return self._send(422, {"message": "Reference already exists"})
            gh.branches[name] = dict(gh.branches["main"])
            return self._send(201, {"ref": body["ref"]})
        if path == "/pulls" and method == "POST":
            if any(p["head"] == body["head"] for p in gh.pulls):
                return self._send(422, {"message": "A pull request already exists"})
            number = len(gh.pulls) + 1
            pull = {
                **body,
                "number": number,
                "html_url": f"https://github.com/{gh.repository}/pull/{number}",
            }
            gh.pulls.append(pull)
            return self._send(201, pull)
        if method == "POST" and (match := re.fullmatch(r"/issues/(\d+)/labels", path)):
            number = int(match.group(1))
            if not any(p["number"] == number for p in gh.pulls):
                return self._send(404, {"message": "Not Found"})
            labels = gh.labels.setdefault(number, [])
            labels += [label for label in body["labels"] if label not in labels]
            return self._send(200, [{"name": label} for label in labels])
        if path == "/pulls" and method == "GET":
            head = query["head"].split(":", 1)[1]
            return self._send(200, [p for p in gh.pulls if p["head"] == head])
        return self._send(404, {"message": "Not Found"})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    files = {
        pin_path(env, kind): (REPO_ROOT / pin_path(env, kind)).read_text()
        for env in ENVIRONMENTS
        for kind in PIN_KINDS
    }
    server = FakeGitHub("acme/churn-platform", files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn-platform")
    monkeypatch.setenv("GITHUB_API_URL", server.url)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _no_github(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "GITHUB_TOKEN",
        "GITHUB_REPOSITORY",
        "GITHUB_API_URL",
        "GITHUB_APP_ID",
        "GITHUB_APP_INSTALLATION_ID",
        "GITHUB_APP_PRIVATE_KEY",
    ):
        monkeypatch.delenv(var, raising=False)


def run_git(repo: Path, *args: str) -> str:
    return git(repo, *args)


def _state(repo: Path) -> tuple[str, str, str, str]:
    index = (repo / ".git" / "index").read_bytes()
    return (
        run_git(repo, "rev-parse", "HEAD"),
        run_git(repo, "symbolic-ref", "HEAD"),
        run_git(repo, "status", "--porcelain"),
        hashlib.sha256(index).hexdigest(),
    )


def test_a_local_promotion_is_a_branch_made_without_touching_the_checkout(gitops: Path) -> None:
    before = _state(gitops)
    result = promote("dev", PIN, "evidence table", repo=gitops)
    assert _state(gitops) == before
    assert result.kind == "local-branch"
    assert result.branch == "promote/churn-model-dev-v4"
    assert "no GITHUB_TOKEN/GITHUB_REPOSITORY: wrote local branch" in result.message
    changed = run_git(gitops, "diff", "--name-only", "main", result.branch).splitlines()
    assert changed == [pin_path("dev")]
    assert read_pin_git(gitops, result.branch, "dev") == PIN
    assert run_git(gitops, "log", "-1", "--format=%an <%ae>%n%B", result.branch).startswith(
        "churn-workflows <churn-workflows@users.noreply.github.com>\n"
        "Promote churn-model version 4 to dev\n\nevidence table"
    )
    assert run_git(gitops, "rev-parse", "main") == before[0]


def test_the_target_branch_is_never_written(gitops: Path) -> None:
    run_git(gitops, "branch", "-m", "main", "promote/churn-model-dev-v4")
    with pytest.raises(PipelineError, match="refusing to write to the target branch"):
        promote("dev", PIN, "", repo=gitops)


def test_promoting_what_already_runs_changes_nothing(gitops: Path) -> None:
    bootstrap = parse_pin((gitops / pin_path("dev")).read_text(), "x")
    result = promote("dev", bootstrap, "", repo=gitops)
    assert result.kind == "unchanged"
    assert run_git(gitops, "branch", "--list").strip() == "* main"


def test_a_hand_broken_pin_stops_the_promotion(gitops: Path) -> None:
    (gitops / pin_path("staging")).write_text(render_pin(PIN).replace('"4"', "four"))
    run_git(gitops, "commit", "--quiet", "-am", "hand edit")
    with pytest.raises(
        PipelineError,
        match=r"overlays/staging/model.yaml at main: invalid model pin: MODEL_VERSION",
    ):
        promote("staging", PIN, "", repo=gitops)
    assert "promote/" not in run_git(gitops, "branch", "--list")


def test_a_pull_request_through_the_github_api_carries_the_evidence(github: FakeGitHub) -> None:
    result = promote("dev", PIN, "| metric | candidate | running |", base=None)
    assert result.kind == "pull-request"
    assert result.url == "https://github.com/acme/churn-platform/pull/1"
    (pull,) = github.pulls
    assert pull["base"] == "main"
    assert pull["head"] == "promote/churn-model-dev-v4"
    assert pull["body"] == "| metric | candidate | running |"
    branch = github.branches["promote/churn-model-dev-v4"]
    assert branch[pin_path("dev")] == render_pin(PIN)
    assert {k: v for k, v in branch.items() if k != pin_path("dev")} == {
        k: v for k, v in github.branches["main"].items() if k != pin_path("dev")
    }
    assert parse_pin(github.branches["main"][pin_path("dev")], "main").is_bootstrap
    assert github.labels == {1: ["promotion", "dev"]}
    # A retry finds the branch and the open PR instead of failing or duplicating them.
    again = promote("dev", PIN, "| metric | candidate | running |")
    assert again.url == result.url
    assert len(github.pulls) == 1
    assert github.labels == {1: ["promotion", "dev"]}


def test_a_local_shadow_pin_edits_only_shadow_yaml_on_a_shadow_branch(gitops: Path) -> None:
    before = _state(gitops)
    result = promote("dev", PIN, "gate evidence", repo=gitops, pin_as="shadow")
    assert _state(gitops) == before
    assert result.kind == "local-branch"
    assert result.branch == "shadow/churn-model-dev-v4"
    changed = run_git(gitops, "diff", "--name-only", "main", result.branch).splitlines()
    assert changed == [pin_path("dev", "shadow")]
    shadow = run_git(gitops, "show", f"{result.branch}:{pin_path('dev', 'shadow')}")
    assert parse_shadow_pin(shadow + "\n", "branch") == PIN
    assert run_git(gitops, "log", "-1", "--format=%B", result.branch).startswith(
        "Shadow churn-model version 4 in dev\n\ngate evidence"
    )
    # The served model's pin is untouched: the shadow never replaces it.
    assert read_pin_git(gitops, result.branch, "dev").is_bootstrap


def test_a_candidate_already_pinned_as_the_shadow_opens_nothing(gitops: Path) -> None:
    (gitops / pin_path("dev", "shadow")).write_text(render_shadow_pin(PIN))
    run_git(gitops, "commit", "--quiet", "-am", "shadow version 4")
    result = promote("dev", PIN, "", repo=gitops, pin_as="shadow")
    assert result.kind == "unchanged"
    assert result.message == (
        f"{pin_path('dev', 'shadow')} at main already pins this model as the shadow (version 4)"
    )
    assert run_git(gitops, "branch", "--list").strip() == "* main"
    # The same model as the served model is still a change: the shadow file says nothing of it.
    assert promote("dev", PIN, "", repo=gitops).kind == "local-branch"


def test_a_shadow_pull_request_says_shadow_in_title_branch_and_labels(github: FakeGitHub) -> None:
    result = promote("staging", PIN, "gate evidence", pin_as="shadow")
    assert result.url == "https://github.com/acme/churn-platform/pull/1"
    (pull,) = github.pulls
    assert pull["head"] == "shadow/churn-model-staging-v4"
    assert pull["title"] == "Shadow churn-model version 4 in staging"
    assert pull["body"] == "gate evidence"
    assert github.labels == {1: ["shadow", "staging"]}
    branch = github.branches["shadow/churn-model-staging-v4"]
    assert branch[pin_path("staging", "shadow")] == render_shadow_pin(PIN)
    assert {k for k in branch if branch[k] != github.branches["main"][k]} == {
        pin_path("staging", "shadow")
    }
    # Merged, the same candidate opens nothing more.
    github.branches["main"] = dict(branch)
    again = promote("staging", PIN, "gate evidence", pin_as="shadow")
    assert again.kind == "unchanged"
    assert len(github.pulls) == 1


def test_a_hand_broken_shadow_pin_stops_a_shadow_promotion(github: FakeGitHub) -> None:
    github.branches["main"][pin_path("dev", "shadow")] = render_shadow_pin(PIN).replace('"4"', '""')
    with pytest.raises(
        PipelineError,
        match=re.escape(f"{pin_path('dev', 'shadow')} at main: invalid shadow pin: SHADOW_MODEL_"),
    ):
        promote("dev", PIN, "", pin_as="shadow")
    assert not github.pulls


def test_the_running_pin_is_read_from_github_when_configured(github: FakeGitHub) -> None:
    assert read_target_pin("prod").is_bootstrap
    github.branches["main"][pin_path("prod")] = "kind: [broken"
    with pytest.raises(
        PipelineError,
        match=re.escape(f"acme/churn-platform:{pin_path('prod')} at main: invalid model pin"),
    ):
        read_target_pin("prod")
    assert not github.pulls


def test_bad_credentials_are_named(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    with pytest.raises(PipelineError, match="HTTP 401"):
        promote("dev", PIN, "")
    assert not github.pulls


def _as_the_app(monkeypatch: pytest.MonkeyPatch, key: str = "") -> None:
    """The pod's environment in the cluster: the App's credentials, no token."""
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.setenv("GITHUB_APP_ID", APP_ID)
    monkeypatch.setenv("GITHUB_APP_INSTALLATION_ID", INSTALLATION_ID)
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", key or _pem(APP_KEY))


def test_the_github_app_mints_a_token_scoped_to_the_repository_and_opens_the_pr(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_the_app(monkeypatch)
    result = promote("dev", PIN, "evidence", base=None)
    assert result.url == "https://github.com/acme/churn-platform/pull/1"
    (request,) = github.token_requests
    assert request == {
        "repositories": ["churn-platform"],
        "permissions": {"contents": "write", "pull_requests": "write"},
    }


def test_the_app_wins_over_a_token_and_a_wrong_key_is_refused(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_the_app(monkeypatch, _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    with pytest.raises(PipelineError, match=f"GitHub App {APP_ID} could not get a token.*401"):
        promote("dev", PIN, "")
    assert not github.pulls
    assert not github.token_requests


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("GITHUB_APP_ID", "my-app", "GITHUB_APP_ID must be the App's numeric id"),
        ("GITHUB_APP_INSTALLATION_ID", "", "incomplete: GITHUB_APP_INSTALLATION_ID not set"),
        ("GITHUB_APP_PRIVATE_KEY", "not a key", "GITHUB_APP_PRIVATE_KEY is not the App's PEM"),
    ],
)
def test_bad_app_credentials_are_named(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    _as_the_app(monkeypatch)
    monkeypatch.setenv(variable, value)
    with pytest.raises(PipelineError, match=message):
        promote("dev", PIN, "")
    assert not github.pulls
    assert "not a key" not in str(github.token_requests)


def test_an_unknown_installation_is_named(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_the_app(monkeypatch)
    monkeypatch.setenv("GITHUB_APP_INSTALLATION_ID", "1")
    with pytest.raises(PipelineError, match="installation 1: HTTP 404"):
        GitHub.from_env()


def test_command_promotes_locally(gitops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--environment",
        "dev",
        "--uri",
        PIN.uri,
        "--sha256",
        PIN.sha256,
        "--version",
        "4",
        "--repo",
        str(gitops),
    ]
    assert main([*args, "--evidence", "ok"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "local-branch"
    assert main([*args, "--pin-as", "shadow"]) == 0
    assert json.loads(capsys.readouterr().out)["branch"] == "shadow/churn-model-dev-v4"
    bad = [
        "--environment",
        "dev",
        "--uri",
        PIN.uri,
        "--sha256",
        "xyz",
        "--version",
        "5",
        "--repo",
        str(gitops),
    ]
    assert main(bad) == 1
    assert "MODEL_SHA256 must be 64 lower-case hex digits" in capsys.readouterr().err


def _shadow_evidence(url: str, shadow_version: str = "4") -> ChampionChallenger:
    """churn-monitor's numbers for ``shadow_version`` beside serving version 3, in the store."""
    found = ChampionChallenger(
        computed_on=date(2026, 11, 30),
        serving_version="3",
        shadow_version=shadow_version,
        labelled=1500,
        first_day=date(2026, 11, 2),
        last_day=date(2026, 11, 29),
        days=28,
        serving={"roc_auc": 0.8, "pr_auc": 0.55, "brier": 0.15},
        shadow={"roc_auc": 0.82, "pr_auc": 0.58, "brier": 0.14},
        gain={"delta": 0.02, "low": 0.005, "high": 0.035},
    )
    store = open_store(url)
    store.migrate()
    store.write_monitor_results(found.to_results())
    store.close()
    return found


def _pin_shadow(gitops: Path, pin: Pin) -> None:
    (gitops / pin_path("dev", "shadow")).write_text(render_shadow_pin(pin))
    run_git(gitops, "commit", "--quiet", "-am", f"shadow version {pin.version}")


def _body(gitops: Path, branch: str) -> str:
    return run_git(gitops, "log", "-1", "--format=%B", branch).partition("\n\n")[2]


@pytest.fixture(params=STORE_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_database(request.param, "promote", tmp_path) as url:
        yield url


def test_promoting_the_current_shadow_carries_its_live_evidence(
    gitops: Path, store_url: str
) -> None:
    _pin_shadow(gitops, PIN)
    _shadow_evidence(store_url)
    result = promote("dev", PIN, "gate evidence", repo=gitops, store_url=store_url)
    body = _body(gitops, result.branch)
    assert body.startswith("gate evidence\n\n### Live shadow evidence\n")
    assert (
        "Version 4 as the shadow beside serving version 3: n = 1500 labelled live predictions "
        "scored by both, 28 day(s) from 2026-11-02 to 2026-11-29 (churn-monitor, 2026-11-30)."
    ) in body
    assert "| roc_auc | 0.8000 | 0.8200 | +0.0200 [+0.0050, +0.0350] |" in body
    assert "| pr_auc | 0.5500 | 0.5800 | |" in body
    assert "| brier | 0.1500 | 0.1400 | |" in body


def test_a_shadow_pull_request_through_github_carries_the_evidence_too(
    github: FakeGitHub, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    github.branches["main"][pin_path("dev", "shadow")] = render_shadow_pin(PIN)
    _shadow_evidence(url)
    promote("dev", PIN, "gate evidence", store_url=url)
    (pull,) = github.pulls
    assert pull["title"] == "Promote churn-model version 4 to dev"
    assert "### Live shadow evidence" in pull["body"]
    assert "| roc_auc | 0.8000 | 0.8200 | +0.0200 [+0.0050, +0.0350] |" in pull["body"]


def test_without_evidence_the_body_says_so_in_one_line_and_the_promotion_goes_on(
    gitops: Path, tmp_path: Path
) -> None:
    _pin_shadow(gitops, PIN)
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    _shadow_evidence(empty, shadow_version="9")  # another shadow's numbers are not evidence
    cases = {
        None: "No live shadow evidence: no prediction store configured.",
        empty: "No live shadow evidence: churn-monitor has no labelled predictions scored by "
        "version 4 as the shadow.",
        "postgresql://churn:secret@127.0.0.1:1/none": "No live shadow evidence: the prediction "
        "store could not be read (",
    }
    for url, line in cases.items():
        result = promote("dev", PIN, "gate evidence", repo=gitops, store_url=url)
        assert result.kind == "local-branch"
        body = _body(gitops, result.branch)
        assert body.startswith(f"gate evidence\n\n{line}"), body
        assert len(body.splitlines()) == 3, body
        assert "secret" not in body
        run_git(gitops, "branch", "-D", result.branch)


def test_a_candidate_that_is_not_the_shadow_has_no_shadow_section(
    gitops: Path, tmp_path: Path
) -> None:
    other = Pin(PIN.uri.replace("b" * 64, "c" * 64), "c" * 64, "5")
    _pin_shadow(gitops, other)
    result = promote("dev", PIN, "gate evidence", repo=gitops, store_url=None)
    assert _body(gitops, result.branch) == "gate evidence"
