"""Promotion's gate on dev's PolicyReports, from the cluster's report to the refusal.

Two fakes on loopback stand for what cannot be reached here: FakeKubernetes serves the
PolicyReport list and the Argo CD Application the in-cluster reporter reads
(policies/ci/policy_reports_dispatch.py); FakeGitHub keeps the repository_dispatch it receives,
the commit statuses set and the commit history the gate walks
(.github/scripts/policy_reports_status.py). Both refuse a request without their token.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "example-org/churn-platform"
GITHUB_TOKEN = "fake-github-token"
KUBE_TOKEN = "fake-service-account-token"


def _load(name: str, path: Path) -> ModuleType:
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


status = _load("policy_reports_status", ROOT / ".github/scripts/policy_reports_status.py")
dispatch = _load("policy_reports_dispatch", ROOT / "policies/ci/policy_reports_dispatch.py")


def sha(n: int) -> str:
    return f"{n:040x}"


class FakeServer:
    """A JSON server on 127.0.0.1:0 answering GET and POST from ``routes``."""

    def __init__(self, token: str) -> None:
        self.get: dict[str, Any] = {}
        self.posted: list[tuple[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not self._authorised():
                    return
                url = urllib.parse.urlparse(self.path)
                found = fake.answer(url.path, urllib.parse.parse_qs(url.query))
                if found is None:
                    self._send(404, {"message": "Not Found"})
                else:
                    self._send(200, found)

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.posted.append((self.path, body))
                answer = fake.on_post(self.path, body)
                if answer is None:  # as GitHub answers a dispatch: 204, no body
                    self.send_response(204)
                    self.end_headers()
                else:
                    self._send(201, answer)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {token}":
                    return True
                self._send(401, {"message": "Bad credentials"})
                return False

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

    def answer(self, path: str, query: dict[str, list[str]]) -> Any:
        return self.get.get(path)

    def on_post(self, path: str, body: Any) -> Any:
        return None


class FakeGitHub(FakeServer):
    """Commit history (newest first), statuses per commit, and the dispatches received."""

    def __init__(self) -> None:
        super().__init__(GITHUB_TOKEN)
        self.commits: list[str] = []
        self.statuses: dict[str, list[dict[str, str]]] = {}

    def answer(self, path: str, query: dict[str, list[str]]) -> Any:
        prefix = f"/repos/{REPOSITORY}/commits"
        if path == prefix:
            page, size = int(query.get("page", ["1"])[0]), int(query["per_page"][0])
            return [{"sha": c} for c in self.commits[(page - 1) * size : page * size]]
        if path.startswith(prefix + "/") and path.endswith("/statuses"):
            return self.statuses.get(path.split("/")[-2], [])
        return None

    def on_post(self, path: str, body: Any) -> Any:
        prefix = f"/repos/{REPOSITORY}/statuses/"
        if not path.startswith(prefix):
            return None
        self.statuses.setdefault(path.removeprefix(prefix), []).insert(0, body)
        return body


def _serve(fake: FakeServer) -> Iterator[Any]:
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    yield from _serve(FakeGitHub())


@pytest.fixture
def kubernetes() -> Iterator[FakeServer]:
    yield from _serve(FakeServer(KUBE_TOKEN))


def report(namespace: str, result: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace},
        "scope": {"kind": "Pod", "name": "churn-api-7d9f"},
        "results": [{"policy": "require-ro-rootfs", "result": result, "message": "writable"}],
    }


def cluster(kubernetes: FakeServer, revision: str, *reports: dict[str, Any]) -> None:
    kubernetes.get[dispatch.REPORTS] = {"items": list(reports)}
    kubernetes.get[dispatch.APPLICATION.format(namespace="argocd", name="churn-api-dev")] = {
        "status": {"sync": {"revision": revision}}
    }


def report_from_the_cluster(
    kubernetes: FakeServer, github: FakeGitHub, tmp_path: Path
) -> tuple[int, dict[str, Any]]:
    """Run the CronJob's command against the fakes; return its exit code and the payload sent."""
    (tmp_path / "kube-token").write_text(KUBE_TOKEN)
    (tmp_path / "github-token").write_text(GITHUB_TOKEN + "\n")
    code = dispatch.main(
        [
            "--environment=dev",
            "--namespace=churn",
            "--namespace=churn-training",
            "--application=churn-api-dev",
            f"--repository={REPOSITORY}",
            f"--github-api={github.url}",
            f"--github-token-file={tmp_path / 'github-token'}",
            f"--kube-api={kubernetes.url}",
            f"--kube-token-file={tmp_path / 'kube-token'}",
        ]
    )
    sent = [body for path, body in github.posted if path == f"/repos/{REPOSITORY}/dispatches"]
    return code, sent[-1] if sent else {}


def record_as_the_workflow(github: FakeGitHub, payload: dict[str, Any]) -> None:
    """What policy-reports.yaml does with the dispatch."""
    client = status.GitHub(github.url, REPOSITORY, GITHUB_TOKEN)
    body = payload["client_payload"]
    status.record(
        client,
        body["environment"],
        body["revision"],
        clean=body["clean"],
        summary=body["summary"],
        target_url="",
    )


def gate(github: FakeGitHub, head: str) -> Any:
    return status.check(status.GitHub(github.url, REPOSITORY, GITHUB_TOKEN), head, "dev")


def test_clean_reports_in_dev_let_a_later_revision_be_promoted(
    kubernetes: FakeServer, github: FakeGitHub, tmp_path: Path
) -> None:
    # A failure outside our namespaces (an add-on) does not count.
    cluster(kubernetes, sha(2), report("churn", "pass"), report("monitoring", "fail"))
    code, payload = report_from_the_cluster(kubernetes, github, tmp_path)
    assert code == 0
    assert payload["event_type"] == "policy-reports"
    assert payload["client_payload"]["clean"] is True
    assert payload["client_payload"]["revision"] == sha(2)
    record_as_the_workflow(github, payload)
    assert github.statuses[sha(2)][0]["context"] == "policy-reports/dev"
    assert github.statuses[sha(2)][0]["state"] == "success"
    github.commits = [sha(3), sha(2), sha(1)]
    verdict = gate(github, sha(3))
    assert verdict.healthy, verdict.reason


def test_a_failing_report_in_our_namespace_refuses_promotion_naming_it(
    kubernetes: FakeServer, github: FakeGitHub, tmp_path: Path
) -> None:
    cluster(kubernetes, sha(2), report("churn", "pass"), report("churn-training", "fail"))
    code, payload = report_from_the_cluster(kubernetes, github, tmp_path)
    assert code == 0
    assert payload["client_payload"]["clean"] is False
    assert "require-ro-rootfs" in payload["client_payload"]["summary"]
    record_as_the_workflow(github, payload)
    assert github.statuses[sha(2)][0]["state"] == "failure"
    assert "require-ro-rootfs" in github.statuses[sha(2)][0]["description"]
    github.commits = [sha(3), sha(2), sha(1)]
    verdict = gate(github, sha(3))
    assert not verdict.healthy
    assert "failure" in verdict.reason


def test_no_report_at_all_is_not_clean(
    kubernetes: FakeServer, github: FakeGitHub, tmp_path: Path
) -> None:
    cluster(kubernetes, sha(2))
    _, payload = report_from_the_cluster(kubernetes, github, tmp_path)
    assert payload["client_payload"]["clean"] is False
    assert "no PolicyReport" in payload["client_payload"]["summary"]


def test_the_newest_report_decides_and_none_refuses(github: FakeGitHub) -> None:
    github.commits = [sha(3), sha(2), sha(1)]
    verdict = gate(github, sha(3))
    assert not verdict.healthy
    assert "reported nothing" in verdict.reason
    github.statuses[sha(1)] = [{"context": "policy-reports/dev", "state": "success"}]
    github.statuses[sha(2)] = [{"context": "policy-reports/dev", "state": "failure"}]
    assert not gate(github, sha(3)).healthy
    github.statuses[sha(3)] = [{"context": "policy-reports/dev", "state": "success"}]
    assert gate(github, sha(3)).healthy
    # Another context on a newer commit says nothing about dev's reports.
    github.commits.insert(0, sha(4))
    github.statuses[sha(4)] = [{"context": "policy-reports/staging", "state": "failure"}]
    assert gate(github, sha(4)).healthy


def test_the_command_line_exits_1_refusing_and_0_when_clean(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GH_TOKEN", GITHUB_TOKEN)
    github.commits = [sha(2), sha(1)]
    argv = ["--api-url", github.url, "--repository", REPOSITORY]
    assert status.main([*argv, "check", "--revision", sha(2), "--env", "dev"]) == 1
    assert "refusing to promote" in capsys.readouterr().err
    record = [*argv, "record", "--env", "dev", "--revision", sha(2), "--clean", "true"]
    assert status.main(record) == 0
    assert status.main([*argv, "check", "--revision", sha(2), "--env", "dev"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["record", "--env", "qa", "--revision", sha(1), "--clean", "true"], "'qa'"),
        (["record", "--env", "dev", "--revision", "main", "--clean", "true"], "40-hex"),
        (["check", "--env", "dev", "--revision", "HEAD"], "40-hex"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(
    github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("GH_TOKEN", GITHUB_TOKEN)
    assert status.main(["--api-url", github.url, "--repository", REPOSITORY, *argv]) == 2
    assert message in capsys.readouterr().err
    assert github.posted == []


def test_the_reporter_exits_2_naming_what_it_cannot_read(
    kubernetes: FakeServer, github: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No Application synced yet: nothing is sent rather than a status on a guessed revision.
    kubernetes.get[dispatch.REPORTS] = {"items": [report("churn", "pass")]}
    code, payload = report_from_the_cluster(kubernetes, github, tmp_path)
    assert code == 2
    assert payload == {}
    assert "churn-api-dev" in capsys.readouterr().err
    cluster(kubernetes, "not-a-commit", report("churn", "pass"))
    code, payload = report_from_the_cluster(kubernetes, github, tmp_path)
    assert code == 2
    assert "no synced commit" in capsys.readouterr().err
    cluster(kubernetes, sha(1))
    kubernetes.get[dispatch.REPORTS] = {"kind": "Status"}
    assert report_from_the_cluster(kubernetes, github, tmp_path) == (2, {})
    assert "report list" in capsys.readouterr().err


def test_promote_checks_dev_reports_and_the_workflow_records_them(root: Path) -> None:
    promote = yaml.safe_load((root / ".github/workflows/promote.yaml").read_text())
    commands = [step.get("run", "") for step in promote["jobs"]["plan"]["steps"]]
    assert any(
        "policy_reports_status.py" in c and " check " in c and "--env dev" in c for c in commands
    )
    recorder = yaml.safe_load((root / ".github/workflows/policy-reports.yaml").read_text())
    assert recorder[True]["repository_dispatch"]["types"] == [
        dispatch.dispatch_payload(
            {"items": [report("churn", "pass")]},
            {"status": {"sync": {"revision": sha(1)}}},
            "dev",
            ["churn"],
        )["event_type"]
    ]
    (job,) = recorder["jobs"].values()
    assert job["permissions"] == {"contents": "read", "statuses": "write"}
    assert any("policy_reports_status.py" in s.get("run", "") for s in job["steps"])
