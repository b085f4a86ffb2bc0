"""The promotion gate on the source environment's health, against a fake GitHub on loopback.

FakeGitHub serves only the three REST calls the gate makes (commits by path, commit history,
a commit's statuses) from memory, and refuses a request without the token.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "example-org/churn-platform"
PIN_FILE = "platform/apps/churn-api/overlays/dev/model.yaml"
TOKEN = "fake-token"


def _load() -> ModuleType:
    path = ROOT / ".github" / "scripts" / "release_health.py"
    spec = importlib.util.spec_from_file_location("release_health", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["release_health"] = module
    spec.loader.exec_module(module)
    return module


health = _load()


def sha(n: int) -> str:
    return f"{n:040x}"


class FakeGitHub:
    """Commits newest first, the one that changed the pin file, and statuses per commit."""

    def __init__(self) -> None:
        self.commits: list[str] = []
        self.pin_commit: str | None = None
        self.statuses: dict[str, list[dict[str, str]]] = {}
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(self.path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, {"message": "Bad credentials"})
                    return
                url = urllib.parse.urlparse(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                prefix = f"/repos/{REPOSITORY}"
                if url.path == f"{prefix}/commits" and "path" in query:
                    pin = [{"sha": fake.pin_commit}] if fake.pin_commit else []
                    self._send(200, pin if query["path"] == PIN_FILE else [])
                elif url.path == f"{prefix}/commits":
                    page, size = int(query.get("page", 1)), int(query["per_page"])
                    chunk = fake.commits[(page - 1) * size : page * size]
                    self._send(200, [{"sha": c} for c in chunk])
                elif url.path.startswith(f"{prefix}/commits/") and url.path.endswith("/statuses"):
                    commit = url.path.split("/")[-2]
                    self._send(200, fake.statuses.get(commit, []))
                else:
                    self._send(404, {"message": "Not Found"})

            def do_POST(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, {"message": "Bad credentials"})
                    return
                prefix = f"/repos/{REPOSITORY}/statuses/"
                if not self.path.startswith(prefix):
                    self._send(404, {"message": "Not Found"})
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                commit = self.path.removeprefix(prefix)
                fake.statuses.setdefault(commit, []).insert(0, body)
                self._send(201, body)

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def status(self, commit: str, state: str, context: str = "") -> None:
        context = context or health.context_for("dev")
        self.statuses.setdefault(commit, []).insert(0, {"context": context, "state": state})


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def _verdict(github: FakeGitHub, head: str) -> Any:
    client = health.GitHub(github.url, REPOSITORY, TOKEN)
    return health.release_health(client, head, "dev", PIN_FILE)


def test_a_pin_deployed_healthy_may_be_promoted(github: FakeGitHub) -> None:
    github.commits = [sha(3), sha(2), sha(1)]
    github.pin_commit = sha(2)
    github.status(sha(2), "success")
    verdict = _verdict(github, sha(3))
    assert verdict.healthy, verdict.reason


def test_an_aborted_release_is_refused(github: FakeGitHub) -> None:
    github.commits = [sha(3), sha(2), sha(1)]
    github.pin_commit = sha(2)
    github.status(sha(2), "success")
    github.status(sha(3), "failure")
    verdict = _verdict(github, sha(3))
    assert not verdict.healthy
    assert "failure" in verdict.reason


def test_the_newest_status_of_a_commit_decides(github: FakeGitHub) -> None:
    github.commits = [sha(2), sha(1)]
    github.pin_commit = sha(2)
    github.status(sha(2), "success")
    github.status(sha(2), "pending")
    assert not _verdict(github, sha(2)).healthy


def test_a_pin_not_yet_reported_is_refused_even_if_an_older_one_was_healthy(
    github: FakeGitHub,
) -> None:
    github.commits = [sha(3), sha(2), sha(1)]
    github.pin_commit = sha(2)
    github.status(sha(1), "success")
    verdict = _verdict(github, sha(3))
    assert not verdict.healthy
    assert "has not deployed it Healthy yet" in verdict.reason
    assert not any(f"/commits/{sha(1)}/statuses" in r for r in github.requests)


def test_another_applications_status_does_not_count(github: FakeGitHub) -> None:
    github.commits = [sha(2), sha(1)]
    github.pin_commit = sha(2)
    github.status(sha(2), "success", context="continuous-delivery/churn-api-staging")
    assert not _verdict(github, sha(2)).healthy


def test_the_command_line_exits_1_with_the_reason_and_0_when_healthy(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    github.commits = [sha(2), sha(1)]
    github.pin_commit = sha(2)
    argv = ["--api-url", github.url, "--repository", REPOSITORY, "check", "--revision", sha(2)]
    argv += ["--env", "dev", "--pin-file", PIN_FILE]
    assert health.main(argv) == 1
    assert "refusing to promote" in capsys.readouterr().err
    github.status(sha(2), "success")
    assert health.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["healthy"] is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--env": "qa"}, "unknown environment 'qa'"),
        ({"--revision": "main"}, "40-hex commit"),
        ({"--repository": "not a repo"}, "owner/name"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(
    github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    message: str,
) -> None:
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    top = {"--api-url": github.url, "--repository": REPOSITORY}
    check = {"--revision": sha(2), "--env": "dev", "--pin-file": PIN_FILE}
    top |= {k: v for k, v in change.items() if k in top}
    check |= {k: v for k, v in change.items() if k not in top}
    argv = [item for pair in top.items() for item in pair] + ["check"]
    assert health.main(argv + [item for pair in check.items() for item in pair]) == 2
    assert message in capsys.readouterr().err


def test_a_rejected_token_is_an_error_not_a_verdict(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GH_TOKEN", "wrong")
    argv = ["--api-url", github.url, "--repository", REPOSITORY, "check", "--revision", sha(2)]
    assert health.main([*argv, "--env", "dev", "--pin-file", PIN_FILE]) == 2
    assert "401" in capsys.readouterr().err


def test_promote_asks_the_gate_about_the_source_pin_before_anything_moves() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "promote.yaml").read_text())
    plan = workflow["jobs"]["plan"]
    assert plan["permissions"].get("statuses") == "read"
    steps = [s.get("run", "") for s in plan["steps"]]
    (gate,) = [i for i, run in enumerate(steps) if "release_health.py" in run]
    (pin,) = [i for i, run in enumerate(steps) if "pins.py" in run]
    assert pin < gate, "the gate needs the planned source pin file"
    env = plan["steps"][gate]["env"]
    assert env["FROM"] == "${{ inputs.from }}"
    assert env["SOURCE_FILE"] == "${{ steps.pin.outputs.source_file }}"
    assert " check " in steps[gate]
    assert '--env "$FROM"' in steps[gate]
    assert '--pin-file "$SOURCE_FILE"' in steps[gate]
    for job in ("copy-model", "pull-request"):
        needs = workflow["jobs"][job]["needs"]
        assert "plan" in ([needs] if isinstance(needs, str) else needs)


# ----------------------------------------------------------------------------- record
OVERLAY = Path("platform/apps/churn-api/overlays/dev")


def _git(repo: Path, *args: str, when: str = "2026-05-01T09:00:00+00:00") -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Release Bot",
        "GIT_AUTHOR_EMAIL": "release@example.org",
        "GIT_COMMITTER_NAME": "Release Bot",
        "GIT_COMMITTER_EMAIL": "release@example.org",
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def checkout(tmp_path: Path, pins: ModuleType) -> tuple[Path, str]:
    """dev's pin files in git: the bootstrap pin, then model 3, whose commit it returns."""
    repo = tmp_path / "repo"
    (repo / OVERLAY).mkdir(parents=True)
    for name in ("model.yaml", "kustomization.yaml"):
        shutil.copy(ROOT / OVERLAY / name, repo / OVERLAY / name)
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "-m", "bootstrap")
    pin = {
        "MODEL_URI": f"s3://churn-dev-models/churn-model/sha256/{'a' * 64}.onnx",
        "MODEL_SHA256": "a" * 64,
        "MODEL_VERSION": "3",
    }
    pins._write_model_pin(repo / OVERLAY / "model.yaml", pin)
    when = "2026-05-04T11:00:00+00:00"
    _git(repo, "commit", "--quiet", "-am", "model 3", when=when)
    return repo, _git(repo, "rev-parse", "HEAD").strip()


@pytest.mark.parametrize(("outcome", "state"), [("completed", "success"), ("aborted", "failure")])
def test_a_rollout_event_sets_the_status_on_the_newest_pin_commit(
    github: FakeGitHub,
    checkout: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    outcome: str,
    state: str,
) -> None:
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    repo, commit = checkout
    argv = ["--api-url", github.url, "--repository", REPOSITORY, "record", "--root", str(repo)]
    argv += ["--env", "dev", "--outcome", outcome, "--at", "2026-05-04T12:00:00Z"]
    assert health.main(argv) == 0
    (status,) = github.statuses[commit]
    assert (status["state"], status["context"]) == (state, health.context_for("dev"))


def test_recorded_health_is_what_the_promotion_gate_reads(
    github: FakeGitHub, checkout: tuple[Path, str]
) -> None:
    repo, commit = checkout
    client = health.GitHub(github.url, REPOSITORY, TOKEN)
    at = datetime.fromisoformat("2026-05-04T12:00:00+00:00")
    github.commits = [commit]
    github.pin_commit = commit
    assert not health.release_health(client, commit, "dev", PIN_FILE).healthy
    assert health.record(client, repo, "dev", healthy=True, at=at, target_url="") == commit
    assert health.release_health(client, commit, "dev", PIN_FILE).healthy


def test_a_pin_committed_after_the_event_gets_no_status(
    github: FakeGitHub, checkout: tuple[Path, str]
) -> None:
    repo, _ = checkout
    client = health.GitHub(github.url, REPOSITORY, TOKEN)
    early = datetime.fromisoformat("2026-05-04T10:00:00+00:00")
    assert health.record(client, repo, "dev", healthy=False, at=early, target_url="") is None
    assert github.statuses == {}
