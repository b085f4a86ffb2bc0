"""The sandbox apply's plain-code steps (infra/opentofu/scripts/sandbox.py).

kubectl and the ALB cannot be reached here: `FakeKubectl` answers as a cluster would at each
poll, and `FakeAlb` is a real HTTP server on 127.0.0.1 standing in for the load balancer.
Clocks are fake too, so the deadlines are exercised without waiting.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import pytest
from tofu_hcl import INFRA, load_hcl

SCRIPT = INFRA / "scripts" / "sandbox.py"


@pytest.fixture(scope="module")
def sandbox() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sandbox", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sandbox"] = module
    spec.loader.exec_module(module)
    return module


class FakeClock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeKubectl:
    """Answers `get applications` / `get ingress` from scripted states; records every call."""

    def __init__(
        self,
        applications: list[dict[str, Any]],
        hostnames: list[str | None],
        volumes: list[list[str]] | None = None,
    ) -> None:
        self.applications = list(applications)
        self.hostnames = list(hostnames)
        self.volumes = list(volumes or [[]])
        self.calls: list[tuple[list[str], str | None]] = []

    def __call__(self, args: Sequence[str], stdin: str | None) -> str:
        self.calls.append((list(args), stdin))
        if "applications" in args:
            state = self.applications.pop(0) if len(self.applications) > 1 else self.applications[0]
            return json.dumps(state)
        if "get" in args and "persistentvolumes" in args:
            names = self.volumes.pop(0) if len(self.volumes) > 1 else self.volumes[0]
            return json.dumps({"items": [{"metadata": {"name": n}} for n in names]})
        if "get" in args and "ingress" in args:
            host = self.hostnames.pop(0) if len(self.hostnames) > 1 else self.hostnames[0]
            status = {"loadBalancer": {"ingress": [{"hostname": host}] if host else []}}
            return json.dumps({"status": status})
        return ""


def _app(name: str, sync: str, health: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"sync": {"status": sync}, "health": {"status": health}},
    }


def _listing(*apps: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(apps)}


class FakeAlb:
    """A real HTTP server on 127.0.0.1 answering POST /v1/predict like churn-api behind an
    ALB: `fail_first` answers 503 (targets not yet healthy) before a prediction."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.bodies: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                fake.bodies.append(body)
                if fake.fail_first > 0:
                    fake.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                payload = json.dumps({"customer_id": body["customer_id"], "probability": 0.83})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeAlb:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def alb() -> Iterator[FakeAlb]:
    with FakeAlb(fail_first=2) as fake:
        yield fake


# ----------------------------------------------------------------------------- addresses


def test_runner_cidr_is_the_public_address_as_a_32(sandbox: ModuleType) -> None:
    assert sandbox.runner_cidr("8.8.8.8\n") == "8.8.8.8/32"


@pytest.mark.parametrize(
    "text", ["", "not an address", "10.0.0.1", "0.0.0.0", "203.0.113.7", "2001:db8::1"]
)
def test_runner_cidr_refuses_what_the_api_would_not_see(sandbox: ModuleType, text: str) -> None:
    with pytest.raises(sandbox.SandboxError, match="address"):
        sandbox.runner_cidr(text)


def test_the_region_is_devs(sandbox: ModuleType) -> None:
    assert sandbox.dev_region() == load_hcl(INFRA / "envs" / "dev" / "terraform.tfvars")["region"]


# ----------------------------------------------------------------------------- tofu


def _settings(sandbox: ModuleType, **overrides: str) -> Any:
    values = {
        "account_id": "444455556666",
        "state_bucket": "churn-tofu-state-444455556666",
        "name_prefix": "sbx-churn-dev",
        "runner_cidr": "8.8.8.8/32",
        "github_repository": "example-org/churn-platform",
        **overrides,
    }
    return sandbox.TofuSettings(**values)


def test_dev_is_applied_with_the_sandbox_account_prefix_and_runner_only(
    sandbox: ModuleType,
) -> None:
    init, apply = sandbox.tofu_commands("apply", "dev", _settings(sandbox))
    assert init[:3] == ["tofu", f"-chdir={INFRA / 'envs' / 'dev'}", "init"]
    assert "-backend-config=bucket=churn-tofu-state-444455556666" in init
    assert "-backend-config=key=sandbox/dev/terraform.tfstate" in init
    assert apply[2:6] == ["apply", "-input=false", "-auto-approve", "-lock-timeout=30m"]
    flags, variables = apply[6::2], apply[7::2]
    assert set(flags) == {"-var"}
    assert "account_id=444455556666" in variables
    assert "name_prefix=sbx-churn-dev" in variables
    assert 'public_access_cidrs=["8.8.8.8/32"]' in variables
    assert "github_environment=sandbox" in variables


def test_shared_and_destroy_use_their_own_state_key(sandbox: ModuleType) -> None:
    init, destroy = sandbox.tofu_commands("destroy", "shared", _settings(sandbox))
    assert "-backend-config=key=sandbox/shared/terraform.tfstate" in init
    assert destroy[2] == "destroy"
    assert "-auto-approve" in destroy
    assert not any("name_prefix" in a for a in destroy), "envs/shared has no name_prefix"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("account_id", "1234", "12 digits"),
        ("state_bucket", "bucket/key", "bucket name"),
        ("name_prefix", "churn-dev", "sandbox's own"),
        ("runner_cidr", "10.0.0.1/32", "public address"),
        ("github_repository", "example-org", "owner/name"),
    ],
)
def test_bad_settings_are_refused_by_name(
    sandbox: ModuleType, field: str, value: str, message: str
) -> None:
    with pytest.raises(sandbox.SandboxError, match=message):
        _settings(sandbox, **{field: value})


def test_an_unknown_action_or_root_is_refused(sandbox: ModuleType) -> None:
    with pytest.raises(sandbox.SandboxError, match="apply or destroy"):
        sandbox.tofu_commands("plan", "dev", _settings(sandbox))
    with pytest.raises(sandbox.SandboxError, match="root must be"):
        sandbox.tofu_commands("apply", "prod", _settings(sandbox))


# ----------------------------------------------------------------------------- Argo CD


def test_unready_lists_every_application_not_synced_and_healthy(sandbox: ModuleType) -> None:
    listing = _listing(
        _app("root", "Synced", "Healthy"),
        _app("churn-api-dev", "OutOfSync", "Progressing"),
        {"metadata": {"name": "kyverno-dev"}},
    )
    assert sandbox.unready_applications(listing) == [
        "churn-api-dev (OutOfSync/Progressing)",
        "kyverno-dev (Unknown/Unknown)",
    ]


def test_wait_argocd_polls_until_all_are_ready(sandbox: ModuleType) -> None:
    kubectl = FakeKubectl(
        [
            _listing(_app("root", "Synced", "Healthy")),  # the ApplicationSets have not run yet
            _listing(_app("root", "Synced", "Healthy"), _app("a", "Synced", "Progressing")),
            _listing(_app("root", "Synced", "Healthy"), _app("a", "Synced", "Healthy")),
        ],
        [None],
    )
    clock = FakeClock()
    condition = sandbox.argocd_condition(kubectl, minimum=2)
    sandbox.wait_for(condition, timeout=600, interval=20, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == [20, 20]


def test_wait_argocd_gives_up_at_the_deadline_naming_what_is_stuck(sandbox: ModuleType) -> None:
    kubectl = FakeKubectl([_listing(_app("mlflow-dev", "Synced", "Degraded"))], [None])
    clock = FakeClock()
    condition = sandbox.argocd_condition(kubectl, minimum=1)
    with pytest.raises(sandbox.SandboxError, match=r"mlflow-dev \(Synced/Degraded\)"):
        sandbox.wait_for(condition, timeout=100, interval=30, clock=clock, sleep=clock.sleep)
    assert clock.now >= 100


# ----------------------------------------------------------------------------- the prediction


def test_the_temporary_ingress_is_open_to_the_runner_only(sandbox: ModuleType) -> None:
    ingress = sandbox.sandbox_ingress("8.8.8.8/32")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "8.8.8.8/32"
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert ingress["spec"]["ingressClassName"] == "alb"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "churn-api", "port": {"number": 8000}}


def test_a_prediction_goes_through_the_alb_and_the_ingress_is_removed(
    sandbox: ModuleType, alb: FakeAlb
) -> None:
    kubectl = FakeKubectl([_listing()], [None, None, alb.host])
    clock = FakeClock()
    answer = sandbox.predict_through_alb(
        kubectl, "8.8.8.8/32", timeout=600, interval=15, clock=clock, sleep=clock.sleep
    )
    assert answer == {"customer_id": "sandbox-check", "probability": 0.83}
    assert alb.bodies[-1] == sandbox.PREDICTION_RECORD
    assert len(alb.bodies) == 3, "two 503s while the targets register, then the prediction"
    verbs = [call[0][:1] if call[0][0] != "-n" else call[0][2:3] for call in kubectl.calls]
    assert verbs[0] == ["apply"]
    assert verbs[-1] == ["delete"]
    applied = json.loads(kubectl.calls[0][1] or "{}")
    assert applied["metadata"]["name"] == sandbox.INGRESS_NAME


def test_the_ingress_is_removed_when_no_alb_comes_up(sandbox: ModuleType) -> None:
    kubectl = FakeKubectl([_listing()], [None])
    clock = FakeClock()
    with pytest.raises(sandbox.SandboxError, match="has not created the ALB"):
        sandbox.predict_through_alb(
            kubectl, "8.8.8.8/32", timeout=60, interval=15, clock=clock, sleep=clock.sleep
        )
    assert "delete" in kubectl.calls[-1][0]


def test_an_answer_without_a_probability_is_not_a_prediction(sandbox: ModuleType) -> None:
    kubectl = FakeKubectl([_listing()], ["alb.example"])
    clock = FakeClock()

    def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return 200, {"error": "not a prediction"}

    with pytest.raises(sandbox.SandboxError, match="without a probability"):
        sandbox.predict_through_alb(
            kubectl,
            "8.8.8.8/32",
            timeout=30,
            interval=15,
            post=post,
            clock=clock,
            sleep=clock.sleep,
        )


def test_post_json_reports_nothing_answering_as_status_0(sandbox: ModuleType) -> None:
    with FakeAlb() as fake:
        host = fake.host
    assert sandbox.post_json(f"http://{host}/v1/predict", {}, {}) == (0, {})


# ----------------------------------------------------------------------------- command line


def test_cli_prints_one_line_and_exits_2_on_a_bad_address(
    sandbox: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("192.168.1.1"))
    assert sandbox.main(["runner-cidr"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 192.168.1.1 is not a public address")
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- teardown


def test_teardown_deletes_the_root_and_the_claims_then_waits_for_the_volumes(
    sandbox: ModuleType,
) -> None:
    kubectl = FakeKubectl([_listing()], [None], volumes=[["pvc-1", "pvc-2"], ["pvc-2"], []])
    clock = FakeClock()
    sandbox.teardown(kubectl, timeout=300, interval=15, clock=clock, sleep=clock.sleep)
    deletes = [call[0] for call in kubectl.calls if "delete" in call[0]]
    assert deletes[0][:5] == ["-n", "argocd", "delete", "application", "root"]
    assert "persistentvolumeclaims" in deletes[1]
    assert clock.sleeps == [15, 15]


def test_teardown_names_the_volumes_left_at_the_deadline(sandbox: ModuleType) -> None:
    kubectl = FakeKubectl([_listing()], [None], volumes=[["pvc-prometheus"]])
    clock = FakeClock()
    with pytest.raises(sandbox.SandboxError, match="1 volumes left: pvc-prometheus"):
        sandbox.teardown(kubectl, timeout=60, interval=15, clock=clock, sleep=clock.sleep)
