"""The sandbox apply's steps that are plain code (.github/workflows/sandbox-apply.yaml).

The workflow applies envs/shared and envs/dev into a throwaway AWS account, seeds a model and
pins it for the sandbox only, waits for Argo CD, sends one prediction through an ALB and destroys
everything. What it runs:

    sandbox.py runner-cidr < checkip-output            the runner's egress address as a /32
    sandbox.py region                                  dev's region, from its terraform.tfvars
    sandbox.py tofu --action apply|destroy --root shared|dev ...   init and apply/destroy one root
    sandbox.py pin-model --pin-file pin.json           seed the fixture model, pin it in-cluster
    sandbox.py wait-argocd --timeout 1800              every Application Synced and Healthy
    sandbox.py predict --cidr 203.0.113.7/32 --pin-file pin.json   one prediction, the pin served
    sandbox.py teardown                                what Argo CD made in AWS goes before destroy
    sandbox.py delete-images                           the churn-api images it pushed, before
                                                       envs/shared's destroy

Why pin-model: dev's pin in Git is the bootstrap pin in a fresh fork (docs/contracts.md), or an
artifact in the real dev bucket the sandbox cannot read; either way churn-api would never become
Ready. The sandbox serves its own model instead, without a commit: the fixture model
(churn_api.fixture, the dev dependencies) goes content-addressed into the sandbox's models
bucket, and the live ApplicationSet `churn-api` gets a `templatePatch` adding one kustomize patch
(the pin's three variables) to the Application it generates. A field Git does not set survives
the root Application's self-heal (its diff compares the fields Git sets), and the ApplicationSet
controller itself writes the Application, so nothing reverts the pin during the run.

kubectl, tofu, S3 and HTTP are reached through small seams (`Kubectl`, `run`, an S3 client,
`post_json`/`get_json`) so the logic is tested here against fakes and moto
(infra/opentofu/tests/test_sandbox.py). Every wait polls a condition until a deadline. Only
pin-model needs more than the standard library; it imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import ipaddress
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PREDICTION_RECORD",
    "ModelPin",
    "SandboxError",
    "TofuSettings",
    "alb_hostname",
    "delete_images",
    "image_override",
    "main",
    "pin_model",
    "pin_patch",
    "runner_cidr",
    "sandbox_ingress",
    "seed_model",
    "teardown",
    "template_patch",
    "tofu_commands",
    "unready_applications",
    "wait_for",
]

INFRA = Path(__file__).resolve().parents[1]
ROOTS = ("shared", "dev")
INGRESS_NAME = "churn-api-sandbox"
# One customer, the contract's features (services/churn-api/README.md).
PREDICTION_RECORD: dict[str, Any] = {
    "tenure": 5,
    "monthly_charges": 70.5,
    "contract_type": "month-to-month",
    "support_tickets": 2,
    "internet_service": "fiber-optic",
    "payment_method": "electronic-check",
    "paperless_billing": True,
    "senior_citizen": False,
    "customer_id": "sandbox-check",
}

# The Application the pin goes into, and the ApplicationSet that generates it.
PINNED_APPLICATIONSET = "churn-api"
PINNED_APPLICATION = "churn-api-dev"
# The registry version the sandbox's seeded model serves under (MODEL_VERSION).
SANDBOX_MODEL_VERSION = "sandbox-1"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# An image by digest in an ECR registry: what the sandbox built and pushed for churn-api.
_ECR_IMAGE = re.compile(
    r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/churn-api@sha256:[0-9a-f]{64}$"
)
OVERLAY = INFRA.parents[1] / "platform" / "apps" / "churn-api" / "overlays" / "dev"
_TEMPLATE_ACTION = re.compile(r"\{\{.*?\}\}", re.S)

Kubectl = Callable[[Sequence[str], str | None], str]
PostJson = Callable[[str, dict[str, Any], dict[str, str]], tuple[int, dict[str, Any]]]
GetJson = Callable[[str, dict[str, str]], tuple[int, dict[str, Any]]]


class SandboxError(RuntimeError):
    """A step could not finish; the message says which and why."""


# ----------------------------------------------------------------------------- addresses


def runner_cidr(text: str) -> str:
    """The /32 of the IPv4 address in `text` (checkip's answer), or a SandboxError."""
    candidate = text.strip()
    try:
        address = ipaddress.IPv4Address(candidate)
    except ValueError:
        raise SandboxError(f"not an IPv4 address: {candidate[:60]!r}") from None
    if not address.is_global:
        raise SandboxError(f"{address} is not a public address: the API would not see it")
    return f"{address}/32"


def _tfvar(env: str, name: str) -> str:
    """One top-level string of envs/<env>/terraform.tfvars (stdlib only: the workflow runs
    this before any dependency is installed)."""
    text = (INFRA / "envs" / env / "terraform.tfvars").read_text(encoding="utf-8")
    match = re.search(rf'^{re.escape(name)}\s*=\s*"([^"]*)"', text, re.M)
    if match is None:
        raise SandboxError(f"envs/{env}/terraform.tfvars sets no {name}")
    return match.group(1)


def dev_region() -> str:
    """dev's region, as its terraform.tfvars sets it."""
    return _tfvar("dev", "region")


def environment_prefixes() -> set[str]:
    """The name prefixes the real environments use; the sandbox must not take one."""
    return {_tfvar(env, "name_prefix") for env in ("dev", "staging", "prod")}


# ----------------------------------------------------------------------------- tofu


@dataclass(frozen=True)
class TofuSettings:
    """What makes the sandbox apply differ from dev's: its account, state and names."""

    account_id: str
    state_bucket: str
    name_prefix: str
    runner_cidr: str
    github_repository: str

    def __post_init__(self) -> None:
        if not (self.account_id.isdigit() and len(self.account_id) == 12):
            raise SandboxError(f"account id must be 12 digits, not {self.account_id!r}")
        if not self.state_bucket or "/" in self.state_bucket:
            raise SandboxError(f"state bucket must be a bucket name, not {self.state_bucket!r}")
        if not self.name_prefix or self.name_prefix in environment_prefixes():
            raise SandboxError(
                f"name prefix {self.name_prefix!r} must be the sandbox's own (S3 names are global)"
            )
        runner_cidr(self.runner_cidr.removesuffix("/32"))
        if self.github_repository.count("/") != 1:
            raise SandboxError(f"repository must be owner/name, not {self.github_repository!r}")


def tofu_commands(action: str, root: str, settings: TofuSettings) -> list[list[str]]:
    """`tofu init` and `tofu apply|destroy` for one root of the sandbox, as argv lists."""
    if action not in ("apply", "destroy"):
        raise SandboxError(f"action must be apply or destroy, not {action!r}")
    if root not in ROOTS:
        raise SandboxError(f"root must be one of {ROOTS}, not {root!r}")
    chdir = f"-chdir={INFRA / 'envs' / root}"
    init = [
        "tofu",
        chdir,
        "init",
        "-input=false",
        "-reconfigure",
        f"-backend-config=bucket={settings.state_bucket}",
        f"-backend-config=key=sandbox/{root}/terraform.tfstate",
    ]
    variables = ["-var", f"account_id={settings.account_id}"]
    if root == "dev":
        variables += [
            "-var",
            f"name_prefix={settings.name_prefix}",
            "-var",
            f"public_access_cidrs=[{json.dumps(settings.runner_cidr)}]",
            "-var",
            f"github_repository={settings.github_repository}",
            "-var",
            "github_environment=sandbox",
        ]
    # A run that replaces a cancelled one waits for the cancelled run's destroy to let go.
    change = ["tofu", chdir, action, "-input=false", "-auto-approve", "-lock-timeout=30m"]
    change += variables
    return [init, change]


def run(argv: Sequence[str]) -> None:
    """Run one command, streaming its output; a failure stops the step."""
    print("+", " ".join(argv), flush=True)
    result = subprocess.run(list(argv), check=False)  # noqa: S603 - argv built by tofu_commands
    if result.returncode != 0:
        raise SandboxError(f"{argv[0]} {argv[2]} exited {result.returncode}")


# ----------------------------------------------------------------------------- waiting


def wait_for(
    condition: Callable[[], str | None],
    *,
    timeout: float,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll `condition` (None when met, else what is still missing) until the deadline."""
    deadline = clock() + timeout
    while True:
        missing = condition()
        if missing is None:
            return
        if clock() >= deadline:
            raise SandboxError(f"gave up after {timeout:.0f}s: {missing}")
        print(f"waiting: {missing}", flush=True)
        sleep(interval)


def unready_applications(listing: dict[str, Any]) -> list[str]:
    """`name (sync/health)` of every Application not Synced and Healthy in a
    `kubectl get applications -o json` listing."""
    pending = []
    for app in listing.get("items", []):
        status = app.get("status") or {}
        sync = (status.get("sync") or {}).get("status", "Unknown")
        health = (status.get("health") or {}).get("status", "Unknown")
        if (sync, health) != ("Synced", "Healthy"):
            pending.append(f"{app['metadata']['name']} ({sync}/{health})")
    return sorted(pending)


def argocd_condition(kubectl: Kubectl, minimum: int) -> Callable[[], str | None]:
    """Met when at least `minimum` Applications exist and all are Synced and Healthy (the
    ApplicationSets generate theirs over time, so a count guards against an early yes)."""

    def condition() -> str | None:
        listing = json.loads(kubectl(["-n", "argocd", "get", "applications", "-o", "json"], None))
        count = len(listing.get("items", []))
        pending = unready_applications(listing)
        if pending:
            return f"{len(pending)} of {count} Applications not ready: {', '.join(pending)}"
        if count < minimum:
            return f"{count} Applications, expected at least {minimum}"
        return None

    return condition


# ----------------------------------------------------------------------------- the model pin


@dataclass(frozen=True)
class ModelPin:
    """The pin of docs/contracts.md ("The pin"): where the artifact is, its digest, its version."""

    uri: str
    sha256: str
    version: str

    def __post_init__(self) -> None:
        if not _SHA256.fullmatch(self.sha256):
            raise SandboxError(f"sha256 must be 64 lower-case hex digits, not {self.sha256!r}")
        if self.sha256 == "0" * 64:
            raise SandboxError("the bootstrap pin names no artifact: seed a model first")
        if not (self.uri.startswith("s3://") and self.uri.endswith(f"/{self.sha256}.onnx")):
            raise SandboxError(f"{self.uri!r} is not the content address of {self.sha256}")
        if not self.version:
            raise SandboxError("the pin needs a MODEL_VERSION")

    def to_json(self) -> str:
        """The pin as the JSON object pin-model writes and predict reads."""
        return json.dumps({"uri": self.uri, "sha256": self.sha256, "version": self.version})

    @classmethod
    def from_json(cls, text: str) -> ModelPin:
        """The pin pin-model wrote, or a SandboxError naming what is wrong."""
        try:
            data = json.loads(text)
            return cls(uri=data["uri"], sha256=data["sha256"], version=data["version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SandboxError(f"not a pin file: {exc}") from None


def cluster_annotation(kubectl: Kubectl, name: str) -> str:
    """One annotation of the cluster Secret OpenTofu wrote (docs/contracts.md's table)."""
    listing = json.loads(
        kubectl(
            [
                *("-n", "argocd", "get", "secrets"),
                *("-l", "argocd.argoproj.io/secret-type=cluster", "-o", "json"),
            ],
            None,
        )
    )
    secrets = listing.get("items", [])
    if len(secrets) != 1:
        raise SandboxError(f"expected one Argo CD cluster Secret, found {len(secrets)}")
    value = (secrets[0]["metadata"].get("annotations") or {}).get(name)
    if not value:
        raise SandboxError(f"the cluster Secret has no {name} annotation")
    return str(value)


def seed_model(s3: Any, bucket: str, data: bytes, version: str) -> ModelPin:
    """Upload `data` content-addressed (churn-model/sha256/<sha256>.onnx) and return its pin.
    S3 checks the bytes it stored against the digest sent along."""
    digest = hashlib.sha256(data).hexdigest()
    key = f"churn-model/sha256/{digest}.onnx"
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode(),
    )
    return ModelPin(uri=f"s3://{bucket}/{key}", sha256=digest, version=version)


def pin_patch(pin: ModelPin) -> dict[str, Any]:
    """The kustomize patch that sets the pin's three variables, shaped like
    overlays/<env>/model.yaml; Argo CD applies it after the overlay's own patches."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "churn-api"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "churn-api",
                            "env": [
                                {"name": "MODEL_URI", "value": pin.uri},
                                {"name": "MODEL_SHA256", "value": pin.sha256},
                                {"name": "MODEL_VERSION", "value": pin.version},
                            ],
                        }
                    ]
                }
            }
        },
    }
    return {
        "target": {"group": "apps", "kind": "Deployment", "name": "churn-api"},
        "patch": json.dumps(deployment, indent=2),
    }


def _template_actions(value: Any) -> list[str]:
    """Every `{{...}}` in the strings of `value`."""
    if isinstance(value, dict):
        return [action for item in value.values() for action in _template_actions(item)]
    if isinstance(value, list):
        return [action for item in value for action in _template_actions(item)]
    return _TEMPLATE_ACTION.findall(value) if isinstance(value, str) else []


def image_override(image: str) -> str:
    """Argo CD's kustomize image override (`kustomize edit set image` syntax) that swaps the
    image dev's overlay names for `image`, churn-api as the sandbox built and pushed it."""
    if not _ECR_IMAGE.fullmatch(image):
        raise SandboxError(
            f"image must be <account>.dkr.ecr.<region>.amazonaws.com/churn-api@sha256:<64 hex>,"
            f" not {image[:120]!r}"
        )
    import yaml  # noqa: PLC0415 - the other subcommands run before dependencies are installed

    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text(encoding="utf-8"))
    names = [
        i["name"]
        for i in kustomization.get("images") or []
        if i["name"].rsplit("/", 1)[-1] == "churn-api"
    ]
    if len(names) != 1:
        raise SandboxError(f"expected one churn-api image in {OVERLAY}, found {names}")
    return f"{names[0]}={image}"


def template_patch(applicationset: dict[str, Any], pin: ModelPin, image: str | None = None) -> str:
    """The ApplicationSet's `templatePatch`: its template's kustomize patches plus the pin's,
    and with `image` the override that serves the sandbox's own churn-api image.

    The controller merges templatePatch into each generated Application and a list is replaced,
    not appended to, so the template's own patches are carried along. templatePatch is a Go
    template: their template actions must come through as written, and are checked to."""
    import yaml  # noqa: PLC0415 - the other subcommands run before dependencies are installed

    spec = applicationset.get("spec") or {}
    if spec.get("templatePatch"):
        raise SandboxError("the ApplicationSet already has a templatePatch; refusing to replace it")
    kustomize = ((spec.get("template") or {}).get("spec") or {}).get("source", {}).get("kustomize")
    patches = [*((kustomize or {}).get("patches") or []), pin_patch(pin)]

    def literal(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
        style = "|" if "\n" in text else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(str, literal)
    overrides: dict[str, Any] = {"patches": patches}
    if image is not None:
        overrides["images"] = [image_override(image)]
    document = {"spec": {"source": {"kustomize": overrides}}}
    text = yaml.dump(document, Dumper=Dumper, sort_keys=False, width=1000)
    if sorted(_TEMPLATE_ACTION.findall(text)) != sorted(_template_actions(patches)):
        raise SandboxError("a template action of the ApplicationSet would not survive as YAML")
    return text


def pin_model(
    kubectl: Kubectl,
    pin: ModelPin,
    *,
    image: str | None = None,
    timeout: float,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Once the root Application has made the ApplicationSet, give it the pin's templatePatch;
    then wait until the Application it generates carries the pin."""
    found: list[dict[str, Any]] = []

    def applicationset_exists() -> str | None:
        listing = json.loads(
            kubectl(["-n", "argocd", "get", "applicationsets", "-o", "json"], None)
        )
        for item in listing.get("items", []):
            if item["metadata"]["name"] == PINNED_APPLICATIONSET:
                found[:] = [item]
                return None
        return f"the root Application has not made the ApplicationSet {PINNED_APPLICATIONSET} yet"

    wait_for(applicationset_exists, timeout=timeout, interval=interval, clock=clock, sleep=sleep)
    body = {"spec": {"templatePatch": template_patch(found[0], pin, image)}}
    kubectl(
        [
            *("-n", "argocd", "patch", "applicationset", PINNED_APPLICATIONSET),
            *("--type", "merge", "-p", json.dumps(body)),
        ],
        None,
    )

    def application_pinned() -> str | None:
        listing = json.loads(kubectl(["-n", "argocd", "get", "applications", "-o", "json"], None))
        for app in listing.get("items", []):
            if app["metadata"]["name"] != PINNED_APPLICATION:
                continue
            source = (app.get("spec") or {}).get("source") or {}
            patches = (source.get("kustomize") or {}).get("patches") or []
            if any(pin.sha256 in str(p.get("patch", "")) for p in patches):
                return None
            return f"{PINNED_APPLICATION} does not carry the pin yet"
        return f"the ApplicationSet has not generated {PINNED_APPLICATION} yet"

    wait_for(application_pinned, timeout=timeout, interval=interval, clock=clock, sleep=sleep)


# ----------------------------------------------------------------------------- the prediction


def sandbox_ingress(cidr: str, namespace: str = "churn") -> dict[str, Any]:
    """A temporary internet-facing Ingress in front of churn-api, open to `cidr` only."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": INGRESS_NAME,
            "namespace": namespace,
            "annotations": {
                "alb.ingress.kubernetes.io/scheme": "internet-facing",
                "alb.ingress.kubernetes.io/target-type": "ip",
                "alb.ingress.kubernetes.io/healthcheck-path": "/readyz",
                "alb.ingress.kubernetes.io/inbound-cidrs": cidr,
                "alb.ingress.kubernetes.io/listen-ports": '[{"HTTP": 80}]',
            },
        },
        "spec": {
            "ingressClassName": "alb",
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {"name": "churn-api", "port": {"number": 8000}}
                                },
                            }
                        ]
                    }
                }
            ],
        },
    }


def alb_hostname(ingress: dict[str, Any]) -> str | None:
    """The load balancer's host name once the controller has written it."""
    entries = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    for entry in entries:
        if entry.get("hostname"):
            return str(entry["hostname"])
    return None


def post_json(
    url: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """POST a JSON body; (status, decoded body), status 0 when nothing answered."""
    if not url.startswith("http://"):
        raise SandboxError(f"only the ALB's http:// URL is posted to, not {url[:60]!r}")
    request = urllib.request.Request(  # noqa: S310 - http:// only, checked above
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http only
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (urllib.error.URLError, OSError, ValueError):
        return 0, {}


def get_json(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """GET a JSON body; (status, decoded body), status 0 when nothing answered."""
    if not url.startswith("http://"):
        raise SandboxError(f"only the ALB's http:// URL is read, not {url[:60]!r}")
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - http:// only
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http only
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (urllib.error.URLError, OSError, ValueError):
        return 0, {}


def served_pin_mismatch(
    pin: ModelPin, prediction: dict[str, Any], model: dict[str, Any]
) -> str | None:
    """What differs between the seeded pin and what churn-api says it serves, or None."""
    served = (prediction.get("model_version"), model.get("version"), model.get("sha256"))
    if served != (pin.version, pin.version, pin.sha256):
        return (
            f"churn-api serves version {served[0]!r} (GET /v1/model: {served[1]!r}, sha256 "
            f"{served[2]!r}), not the seeded {pin.version!r} {pin.sha256}"
        )
    return None


def predict_through_alb(
    kubectl: Kubectl,
    cidr: str,
    pin: ModelPin,
    *,
    timeout: float,
    interval: float,
    post: PostJson = post_json,
    get: GetJson = get_json,
    api_key: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Put the temporary Ingress up, wait for its ALB, send one prediction, check that the
    seeded model answered it (its version, and its sha256 from GET /v1/model), take it down."""
    kubectl(["apply", "-f", "-"], json.dumps(sandbox_ingress(cidr)))
    try:
        hostname: list[str] = []

        def has_hostname() -> str | None:
            ingress = json.loads(
                kubectl(["-n", "churn", "get", "ingress", INGRESS_NAME, "-o", "json"], None)
            )
            found = alb_hostname(ingress)
            if found is None:
                return "the load balancer controller has not created the ALB yet"
            hostname[:] = [found]
            return None

        wait_for(has_hostname, timeout=timeout, interval=interval, clock=clock, sleep=sleep)
        url = f"http://{hostname[0]}/v1/predict"
        headers = {"x-api-key": api_key} if api_key else {}
        answer: dict[str, Any] = {}

        def predicted() -> str | None:
            status, body = post(url, PREDICTION_RECORD, headers)
            if status != 200:
                return f"POST {url} answered {status or 'nothing'}"
            if not isinstance(body.get("probability"), float | int):
                return f"POST {url} answered 200 without a probability: {body}"
            answer.update(body)
            return None

        wait_for(predicted, timeout=timeout, interval=interval, clock=clock, sleep=sleep)
        status, model = get(f"http://{hostname[0]}/v1/model", headers)
        if status != 200:
            raise SandboxError(f"GET /v1/model answered {status or 'nothing'}")
        mismatch = served_pin_mismatch(pin, answer, model)
        if mismatch is not None:
            raise SandboxError(mismatch)
        return answer
    finally:
        kubectl(["-n", "churn", "delete", "ingress", INGRESS_NAME, "--ignore-not-found"], None)


# ----------------------------------------------------------------------------- teardown


def teardown(
    kubectl: Kubectl,
    *,
    timeout: float,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Delete what the cluster created in AWS outside OpenTofu's state before `tofu destroy`:
    the root Application (its finalizer prunes every app, and with them their load balancers)
    and every PersistentVolumeClaim (their EBS volumes), then wait until no PersistentVolume
    is left, so nothing is orphaned when the cluster goes."""
    kubectl(
        ["-n", "argocd", "delete", "application", "root", "--ignore-not-found", "--wait=false"],
        None,
    )
    kubectl(["delete", "persistentvolumeclaims", "--all", "--all-namespaces", "--wait=false"], None)

    def volumes_gone() -> str | None:
        listing = json.loads(kubectl(["get", "persistentvolumes", "-o", "json"], None))
        names = sorted(v["metadata"]["name"] for v in listing.get("items", []))
        return f"{len(names)} volumes left: {', '.join(names)}" if names else None

    wait_for(volumes_gone, timeout=timeout, interval=interval, clock=clock, sleep=sleep)


def kubectl_cli(args: Sequence[str], stdin: str | None) -> str:
    """The real kubectl: its stdout, or a SandboxError naming the command."""
    result = subprocess.run(  # noqa: S603 - our own arguments
        ["kubectl", *args],  # noqa: S607 - kubectl from PATH, as the workflow installs it
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SandboxError(f"kubectl {' '.join(args)}: {result.stderr.strip()[:500]}")
    return result.stdout


def delete_images(ecr: Any, repository: str) -> int:
    """Delete every image of the sandbox's `repository` (OpenTofu does not destroy a repository
    that holds images); how many there were. A repository that is not there holds none."""
    image_ids: list[dict[str, str]] = []
    try:
        for page in ecr.get_paginator("list_images").paginate(repositoryName=repository):
            image_ids += page["imageIds"]
    except ecr.exceptions.RepositoryNotFoundException:
        return 0
    for start in range(0, len(image_ids), 100):  # batch_delete_image takes 100 at a time
        answer = ecr.batch_delete_image(
            repositoryName=repository, imageIds=image_ids[start : start + 100]
        )
        if answer.get("failures"):
            failure = answer["failures"][0]
            raise SandboxError(
                f"{repository}: {failure.get('failureCode')}: {failure.get('failureReason')}"
            )
    return len(image_ids)


# ----------------------------------------------------------------------------- command line


def seed_fixture_model(models_bucket: str) -> ModelPin:
    """Build the service's fixture model (seeded: the same bytes every run) and upload it."""
    # The other subcommands run before dependencies are installed.
    import boto3  # noqa: PLC0415
    from churn_api.fixture import fixture_onnx_bytes  # type: ignore[import-untyped]  # noqa: PLC0415

    data = fixture_onnx_bytes(version=SANDBOX_MODEL_VERSION)
    return seed_model(boto3.client("s3"), models_bucket, data, SANDBOX_MODEL_VERSION)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SandboxError(f"cannot read {path}: {exc.strerror}") from None


def _parser() -> argparse.ArgumentParser:
    """The subcommands and their arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("runner-cidr", help="stdin: the runner's IPv4; prints <ip>/32")
    commands.add_parser("region", help="prints dev's region")
    tofu = commands.add_parser("tofu", help="init and apply or destroy one root")
    tofu.add_argument("--action", required=True, choices=["apply", "destroy"])
    tofu.add_argument("--root", required=True, choices=ROOTS)
    for name in ("account-id", "state-bucket", "name-prefix", "runner-cidr", "github-repository"):
        tofu.add_argument(f"--{name}", required=True)
    pin = commands.add_parser("pin-model", help="seed the fixture model and pin it in-cluster")
    pin.add_argument("--pin-file", required=True, type=Path, help="where the pin is written")
    pin.add_argument("--image", help="churn-api by digest in the sandbox's ECR (dev's is not)")
    pin.add_argument("--timeout", type=float, default=1200)
    pin.add_argument("--interval", type=float, default=15)
    wait = commands.add_parser("wait-argocd", help="until every Application is Synced+Healthy")
    wait.add_argument("--timeout", type=float, default=1800)
    wait.add_argument("--interval", type=float, default=20)
    wait.add_argument("--minimum", type=int, default=10, help="Applications that must exist")
    predict = commands.add_parser("predict", help="one prediction through a temporary ALB")
    predict.add_argument("--cidr", required=True, help="who may reach the ALB (the runner)")
    predict.add_argument("--pin-file", required=True, type=Path, help="pin-model's pin")
    predict.add_argument("--timeout", type=float, default=900)
    predict.add_argument("--interval", type=float, default=15)
    images = commands.add_parser("delete-images", help="empty the sandbox's churn-api repository")
    images.add_argument("--repository", default="churn-api")
    down = commands.add_parser("teardown", help="delete what Argo CD made in AWS, then wait")
    down.add_argument("--timeout", type=float, default=900)
    down.add_argument("--interval", type=float, default=15)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; a SandboxError prints one line and exits 2."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "runner-cidr":
            print(runner_cidr(sys.stdin.read()))
        elif args.command == "region":
            print(dev_region())
        elif args.command == "tofu":
            settings = TofuSettings(
                account_id=args.account_id,
                state_bucket=args.state_bucket,
                name_prefix=args.name_prefix,
                runner_cidr=args.runner_cidr,
                github_repository=args.github_repository,
            )
            for command in tofu_commands(args.action, args.root, settings):
                run(command)
        elif args.command == "pin-model":
            seeded = seed_fixture_model(
                models_bucket=cluster_annotation(kubectl_cli, "models_bucket")
            )
            pin_model(
                kubectl_cli,
                seeded,
                image=args.image,
                timeout=args.timeout,
                interval=args.interval,
            )
            args.pin_file.write_text(seeded.to_json(), encoding="utf-8")
            print(f"{PINNED_APPLICATION} pinned to {seeded.uri} (version {seeded.version})")
        elif args.command == "wait-argocd":
            condition = argocd_condition(kubectl_cli, args.minimum)
            wait_for(condition, timeout=args.timeout, interval=args.interval)
            print("every Application is Synced and Healthy")
        elif args.command == "delete-images":
            import boto3  # noqa: PLC0415 - the other subcommands run before dependencies are installed

            count = delete_images(boto3.client("ecr"), args.repository)
            print(f"deleted {count} images of {args.repository}")
        elif args.command == "teardown":
            teardown(kubectl_cli, timeout=args.timeout, interval=args.interval)
            print("no PersistentVolume left; the root Application is deleted")
        else:
            cidr = runner_cidr(args.cidr.removesuffix("/32"))
            answer = predict_through_alb(
                kubectl_cli,
                cidr,
                ModelPin.from_json(_read(args.pin_file)),
                timeout=args.timeout,
                interval=args.interval,
                api_key=os.environ.get("CHURN_API_KEY"),
            )
            print(f"prediction through the ALB: {json.dumps(answer, sort_keys=True)}")
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
