"""The sandbox apply's plain-code steps (infra/opentofu/scripts/sandbox.py).

kubectl and the ALB cannot be reached here: `FakeKubectl` answers as a cluster would at each
poll, and `FakeAlb` is a real HTTP server on 127.0.0.1 standing in for the load balancer and
churn-api behind it. S3 is moto's fake. What Argo CD makes of the pin's templatePatch is
rendered offline with the real `kubectl kustomize` (platform/tests/argocd_tree.py). Clocks are
fake too, so the deadlines are exercised without waiting.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from tofu_hcl import INFRA, load_hcl

SCRIPT = INFRA / "scripts" / "sandbox.py"
REPO = INFRA.parents[1]
sys.path.insert(0, str(REPO / "platform" / "tests"))

import argocd_tree  # noqa: E402 - what Argo CD renders, offline (platform/tests)

CHURN_API = REPO / "platform" / "apps" / "churn-api"
SEEDED_SHA256 = "ab" * 32
SANDBOX_IMAGE = "444455556666.dkr.ecr.eu-west-1.amazonaws.com/churn-api@sha256:" + "cd" * 32


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
        applicationsets: list[dict[str, Any]] | None = None,
        cluster_secrets: list[dict[str, Any]] | None = None,
    ) -> None:
        self.applications = list(applications)
        self.hostnames = list(hostnames)
        self.volumes = list(volumes or [[]])
        self.applicationsets = list(applicationsets or [_listing()])
        self.cluster_secrets = cluster_secrets or []
        self.calls: list[tuple[list[str], str | None]] = []

    def __call__(self, args: Sequence[str], stdin: str | None) -> str:
        self.calls.append((list(args), stdin))
        if "get" in args and "applicationsets" in args:
            sets = self.applicationsets
            return json.dumps(sets.pop(0) if len(sets) > 1 else sets[0])
        if "get" in args and "secrets" in args:
            return json.dumps(_listing(*self.cluster_secrets))
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


def _pin(sandbox: ModuleType, sha256: str = SEEDED_SHA256, version: str = "sandbox-1") -> Any:
    uri = f"s3://sbx-churn-dev-models/churn-model/sha256/{sha256}.onnx"
    return sandbox.ModelPin(uri=uri, sha256=sha256, version=version)


def _applicationset() -> dict[str, Any]:
    """The ApplicationSet churn-api as the root Application puts it into the cluster (Git's)."""
    document: dict[str, Any] = yaml.safe_load(
        (CHURN_API / "applicationset.yaml").read_text(encoding="utf-8")
    )
    return document


def _generated_with(patch: dict[str, Any], name: str = "churn-api-dev") -> dict[str, Any]:
    """A generated Application whose kustomize patches include `patch`."""
    app = _app(name, "OutOfSync", "Progressing")
    app["spec"] = {"source": {"kustomize": {"patches": [patch]}}}
    return app


class FakeAlb:
    """A real HTTP server on 127.0.0.1 answering POST /v1/predict and GET /v1/model like
    churn-api behind an ALB, serving the model (`version`, `sha256`): `fail_first` answers 503
    (targets not yet healthy) before a prediction."""

    def __init__(
        self, fail_first: int = 0, version: str = "sandbox-1", sha256: str = SEEDED_SHA256
    ) -> None:
        self.fail_first = fail_first
        self.model = {"version": version, "sha256": sha256}
        self.bodies: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/v1/model":
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(fake.model).encode())

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                fake.bodies.append(body)
                if fake.fail_first > 0:
                    fake.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                payload = json.dumps(
                    {
                        "customer_id": body["customer_id"],
                        "probability": 0.83,
                        "model_version": fake.model["version"],
                    }
                )
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


# ----------------------------------------------------------------------------- the model pin


def test_the_bootstrap_pin_or_a_pin_naming_another_digest_is_refused(sandbox: ModuleType) -> None:
    with pytest.raises(sandbox.SandboxError, match="bootstrap pin"):
        _pin(sandbox, sha256="0" * 64)
    with pytest.raises(sandbox.SandboxError, match="content address"):
        sandbox.ModelPin(
            uri=f"s3://b/churn-model/sha256/{'cd' * 32}.onnx", sha256=SEEDED_SHA256, version="1"
        )
    with pytest.raises(sandbox.SandboxError, match="64 lower-case hex"):
        _pin(sandbox, sha256="AB" * 32)


@pytest.fixture
def fake_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's fake S3 with the sandbox's models bucket; throwaway credentials."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "fake",
        "AWS_SECRET_ACCESS_KEY": "fake",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(
            Bucket="sbx-churn-dev-models",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
        yield s3


def test_the_model_is_seeded_content_addressed(sandbox: ModuleType, fake_s3: Any) -> None:
    data = b"an onnx artifact's bytes"
    pin = sandbox.seed_model(fake_s3, "sbx-churn-dev-models", data, "sandbox-1")
    digest = hashlib.sha256(data).hexdigest()
    assert pin.sha256 == digest
    assert pin.uri == f"s3://sbx-churn-dev-models/churn-model/sha256/{digest}.onnx"
    stored = fake_s3.get_object(
        Bucket="sbx-churn-dev-models", Key=f"churn-model/sha256/{digest}.onnx"
    )
    assert stored["Body"].read() == data
    assert sandbox.ModelPin.from_json(pin.to_json()) == pin


def test_the_models_bucket_comes_from_the_cluster_secret(sandbox: ModuleType) -> None:
    secret = argocd_tree.cluster_secret("dev")
    kubectl = FakeKubectl([_listing()], [None], cluster_secrets=[secret])
    assert (
        sandbox.cluster_annotation(kubectl, "models_bucket")
        == (secret["metadata"]["annotations"]["models_bucket"])
    )
    with pytest.raises(sandbox.SandboxError, match="no no_such_key annotation"):
        sandbox.cluster_annotation(kubectl, "no_such_key")
    with pytest.raises(sandbox.SandboxError, match="one Argo CD cluster Secret, found 0"):
        sandbox.cluster_annotation(FakeKubectl([_listing()], [None]), "models_bucket")


def test_the_pin_patch_is_the_overlays_pin_with_the_seeded_values(sandbox: ModuleType) -> None:
    pin = _pin(sandbox)
    overlay = yaml.safe_load((CHURN_API / "overlays" / "dev" / "model.yaml").read_text("utf-8"))
    (container,) = overlay["spec"]["template"]["spec"]["containers"]
    values = {"MODEL_URI": pin.uri, "MODEL_SHA256": pin.sha256, "MODEL_VERSION": pin.version}
    container["env"] = [{"name": e["name"], "value": values[e["name"]]} for e in container["env"]]
    patch = sandbox.pin_patch(pin)
    assert yaml.safe_load(patch["patch"]) == overlay
    assert patch["target"] == {"group": "apps", "kind": "Deployment", "name": "churn-api"}


def _rendered_dev(sandbox: ModuleType, pin: Any) -> list[dict[str, Any]]:
    """churn-api-dev as Argo CD renders it once the ApplicationSet carries the templatePatch:
    the patch filled with a sandbox cluster's parameters, its kustomize patches applied."""
    text = sandbox.template_patch(_applicationset(), pin)
    params = argocd_tree.cluster_params("dev")
    params["metadata"]["annotations"] |= {
        "churn_api_iam_role_arn": "arn:aws:iam::444455556666:role/sbx-churn-dev-churn-api",
        "aws_vpc_cidr": "10.99.0.0/16",
    }
    patches = argocd_tree.fill(yaml.safe_load(text), params)["spec"]["source"]["kustomize"]
    return argocd_tree.kustomize(CHURN_API / "overlays" / "dev", patches["patches"])


def test_the_generated_application_serves_the_seeded_pin_and_keeps_the_templates_patches(
    sandbox: ModuleType,
) -> None:
    pin = _pin(sandbox)
    documents = _rendered_dev(sandbox, pin)

    def one(kind: str, name: str) -> dict[str, Any]:
        (found,) = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
        return found

    (container,) = one("Deployment", "churn-api")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["MODEL_URI"], env["MODEL_SHA256"], env["MODEL_VERSION"]) == (
        pin.uri,
        pin.sha256,
        pin.version,
    )
    # The template's own patches still apply: the sandbox's role and VPC, not Git's examples.
    annotations = one("ServiceAccount", "churn-api")["metadata"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::444455556666:")
    policy = one("NetworkPolicy", "churn-api")
    assert policy["spec"]["ingress"][0]["from"][0]["ipBlock"]["cidr"] == "10.99.0.0/16"


def test_without_the_template_patch_dev_serves_gits_pin_not_the_seeded_one() -> None:
    """The rendering above differs from Git's only by the templatePatch: without it churn-api-dev
    serves Git's pin (the bootstrap pin in a fresh fork, which never becomes Ready)."""
    documents = argocd_tree.kustomize(CHURN_API / "overlays" / "dev")
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    overlay = yaml.safe_load((CHURN_API / "overlays" / "dev" / "model.yaml").read_text("utf-8"))
    (container,) = overlay["spec"]["template"]["spec"]["containers"]
    git_pin = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODEL_SHA256"] == git_pin["MODEL_SHA256"] != SEEDED_SHA256


def test_template_actions_with_quotes_come_through_as_written(sandbox: ModuleType) -> None:
    applicationset = _applicationset()
    patches = applicationset["spec"]["template"]["spec"]["source"]["kustomize"]["patches"]
    patches.append(
        {
            "target": {"kind": "ConfigMap", "name": "x"},
            "patch": 'data:\n  region: "{{index .metadata.annotations "aws_region"}}"\n',
        }
    )
    text = sandbox.template_patch(applicationset, _pin(sandbox))
    assert '{{index .metadata.annotations "aws_region"}}' in text


def test_the_sandboxs_own_image_replaces_devs_everywhere_churn_api_runs(
    sandbox: ModuleType, tmp_path: Path
) -> None:
    """dev's overlay pins a digest in dev's account; the sandbox serves the one it pushed.
    Argo CD applies `kustomize.images` as `kustomize edit set image` does: here a kustomization
    on top of the overlay with the same override."""
    text = sandbox.template_patch(_applicationset(), _pin(sandbox), SANDBOX_IMAGE)
    (override,) = yaml.safe_load(text)["spec"]["source"]["kustomize"]["images"]
    name, new = override.split("=")
    new_name, digest = new.split("@")
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(CHURN_API / "overlays" / "dev", tmp_path)],
                "images": [{"name": name, "newName": new_name, "digest": digest}],
            }
        ),
        encoding="utf-8",
    )
    rendered = subprocess.run(
        [str(Path(sys.executable).with_name("kubectl")), "kustomize", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    images = set(re.findall(r"image: (\S*churn-api\S*)", rendered))
    assert images == {SANDBOX_IMAGE}, "the Deployment and the smoke-load Job run the sandbox's"


@pytest.mark.parametrize(
    "image",
    [
        "444455556666.dkr.ecr.eu-west-1.amazonaws.com/churn-api:latest",
        "docker.io/library/churn-api@sha256:" + "cd" * 32,
        "444455556666.dkr.ecr.eu-west-1.amazonaws.com/other@sha256:" + "cd" * 32,
    ],
)
def test_an_image_not_by_digest_in_ecr_is_refused(sandbox: ModuleType, image: str) -> None:
    with pytest.raises(sandbox.SandboxError, match="image must be"):
        sandbox.image_override(image)


def test_an_existing_template_patch_is_not_replaced(sandbox: ModuleType) -> None:
    applicationset = _applicationset()
    applicationset["spec"]["templatePatch"] = "spec: {}"
    with pytest.raises(sandbox.SandboxError, match="already has a templatePatch"):
        sandbox.template_patch(applicationset, _pin(sandbox))


def test_pin_model_waits_for_the_applicationset_patches_it_then_waits_for_the_pin(
    sandbox: ModuleType,
) -> None:
    pin = _pin(sandbox)
    kubectl = FakeKubectl(
        [
            _listing(_app("root", "Synced", "Healthy")),  # not generated yet
            _listing(_generated_with({"patch": "the bootstrap pin"})),  # before the controller
            _listing(_generated_with(sandbox.pin_patch(pin))),
        ],
        [None],
        applicationsets=[_listing(), _listing({**_applicationset(), "status": {}})],
    )
    clock = FakeClock()
    sandbox.pin_model(
        kubectl,
        pin,
        image=SANDBOX_IMAGE,
        timeout=600,
        interval=15,
        clock=clock,
        sleep=clock.sleep,
    )
    patches = [call[0] for call in kubectl.calls if "patch" in call[0]]
    assert len(patches) == 1
    assert patches[0][:5] == ["-n", "argocd", "patch", "applicationset", "churn-api"]
    body = json.loads(patches[0][-1])
    assert body["spec"]["templatePatch"] == sandbox.template_patch(
        _applicationset(), pin, SANDBOX_IMAGE
    )
    assert clock.sleeps == [15, 15, 15], "one wait for the ApplicationSet, two for the pin"


def test_pin_model_names_what_never_came(sandbox: ModuleType) -> None:
    kubectl = FakeKubectl([_listing()], [None])
    clock = FakeClock()
    with pytest.raises(sandbox.SandboxError, match="has not made the ApplicationSet churn-api"):
        sandbox.pin_model(
            kubectl, _pin(sandbox), timeout=60, interval=15, clock=clock, sleep=clock.sleep
        )
    assert not [call for call in kubectl.calls if "patch" in call[0]]


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
        kubectl,
        "8.8.8.8/32",
        _pin(sandbox),
        timeout=600,
        interval=15,
        clock=clock,
        sleep=clock.sleep,
    )
    assert answer == {
        "customer_id": "sandbox-check",
        "probability": 0.83,
        "model_version": "sandbox-1",
    }
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
            kubectl,
            "8.8.8.8/32",
            _pin(sandbox),
            timeout=60,
            interval=15,
            clock=clock,
            sleep=clock.sleep,
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
            _pin(sandbox),
            timeout=30,
            interval=15,
            post=post,
            clock=clock,
            sleep=clock.sleep,
        )


def test_a_prediction_from_another_model_than_the_seeded_one_fails(sandbox: ModuleType) -> None:
    kubectl = FakeKubectl([_listing()], [None])
    clock = FakeClock()
    with FakeAlb(version="0", sha256="0" * 64) as alb:
        kubectl.hostnames = [alb.host]
        with pytest.raises(sandbox.SandboxError, match=r"serves version '0'.*not the seeded"):
            sandbox.predict_through_alb(
                kubectl,
                "8.8.8.8/32",
                _pin(sandbox),
                timeout=60,
                interval=15,
                clock=clock,
                sleep=clock.sleep,
            )
    assert "delete" in kubectl.calls[-1][0], "the Ingress goes also after a mismatch"


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


def test_cli_predict_refuses_a_missing_or_bad_pin_file(
    sandbox: ModuleType, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "pin.json"
    assert sandbox.main(["predict", "--cidr", "8.8.8.8/32", "--pin-file", str(missing)]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot read {missing}")
    missing.write_text('{"uri": "s3://b/k"}', encoding="utf-8")
    assert sandbox.main(["predict", "--cidr", "8.8.8.8/32", "--pin-file", str(missing)]) == 2
    assert capsys.readouterr().err.startswith("error: not a pin file")


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


# ----------------------------------------------------------------------------- the sandbox's images


def _manifest(n: int) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"digest": f"sha256:{n:064x}", "size": 1, "mediaType": "x"},
            "layers": [],
        }
    )


def test_every_pushed_image_is_deleted_before_the_repository_is_destroyed(
    sandbox: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "fake",
        "AWS_SECRET_ACCESS_KEY": "fake",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        ecr = boto3.client("ecr")
        ecr.create_repository(repositoryName="churn-api")
        for n in range(105):  # more than one batch
            manifest = _manifest(n)
            digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
            ecr.put_image(repositoryName="churn-api", imageManifest=manifest, imageDigest=digest)
        assert len(ecr.list_images(repositoryName="churn-api", maxResults=1000)["imageIds"]) == 105
        assert sandbox.delete_images(ecr, "churn-api") == 105
        assert ecr.list_images(repositoryName="churn-api")["imageIds"] == []
        assert sandbox.delete_images(ecr, "never-made") == 0, "shared was never applied"
