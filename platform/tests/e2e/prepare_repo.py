"""Write the copy of this repository a kind cluster bootstraps from, as a cluster would.

e2e-kind.sh serves the copy from a git server inside kind, so the root Application, the
ApplicationSets and every release come from commits, exactly as on EKS. What kind lacks is
substituted in the copy only, each in the layer a cluster would use:

1. every Git source points at the in-cluster server instead of GitHub;
2. clusters/dev lists only the apps the release path needs (Rollouts, Prometheus, Kyverno and
   its policies, the rules, churn-api) beside Argo CD and its projects: the AWS add-ons have no
   AWS here;
3. clusters/dev/values/<app>.yaml, the cluster layer of values, takes the e2e values;
4. the dev overlay gets the churn-api image digest pushed to the local registry (kind mirrors
   it for the ECR name the ApplicationSet builds from the fixture cluster Secret), the
   in-cluster S3 endpoint, the notification service pointed at
   the dispatch recorder instead of GitHub, a short progress deadline, and no ExternalSecret
   (the recorder needs no token; monitoring/ drops its receivers' one too: no AWS here);
5. dev's Kyverno policies deny, as staging and prod do, in the application namespaces, and
   dev's PolicyReport reporter (it reports to GitHub) stays out.

Then `pin` writes a model pin into the copy's dev overlay, one commit per release.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import yaml

__all__ = ["KEPT_APPS", "main", "pin", "prepare"]

ROOT: Final = Path(__file__).resolve().parents[3]
E2E: Final = Path(__file__).resolve().parent
ORIGIN: Final = "https://github.com/example-org/churn-platform.git"
COPIED: Final = ("platform", "clusters", "policies", "monitoring", "workflows/manifests")
OVERLAY: Final = Path("platform/apps/churn-api/overlays/dev")
# What the release path needs, in the order clusters/dev lists them.
KEPT_APPS: Final = (
    "argo-rollouts",
    "kyverno",
    "kube-prometheus-stack",
    "kyverno-policies",
    "monitoring-rules",
    "churn-api",
)
# e2e values file -> the app whose cluster layer it becomes.
CLUSTER_VALUES: Final = {
    "values-argo-rollouts.yaml": "argo-rollouts",
    "values-kube-prometheus-stack.yaml": "kube-prometheus-stack",
}


def _pins() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pins", ROOT / ".github/scripts/pins.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("pins", module)
    spec.loader.exec_module(module)
    return module


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's layering: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _point_sources_at(dest: Path, repo_url: str) -> None:
    for path in dest.rglob("*.yaml"):
        text = path.read_text()
        if ORIGIN in text:
            path.write_text(text.replace(ORIGIN, repo_url))


def _keep_only_release_apps(dest: Path) -> None:
    kustomization = dest / "clusters/dev/kustomization.yaml"
    document = yaml.safe_load(kustomization.read_text())
    document["resources"] = [
        entry
        for entry in document["resources"]
        if not entry.startswith("../../platform/apps/") or Path(entry).name in KEPT_APPS
    ]
    kustomization.write_text("---\n" + yaml.safe_dump(document, sort_keys=False))


def _kind_patches(s3_endpoint: str, dispatch_url: str) -> list[dict[str, object]]:
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
                                {"name": "AWS_ENDPOINT_URL_S3", "value": s3_endpoint},
                                {"name": "AWS_ACCESS_KEY_ID", "value": "e2e"},
                                {"name": "AWS_SECRET_ACCESS_KEY", "value": "e2e"},
                                {"name": "AWS_REGION", "value": "eu-west-1"},
                            ],
                        }
                    ]
                }
            }
        },
    }
    webhook = (
        f"url: {dispatch_url}\nheaders:\n  - name: Authorization\n    value: Bearer $github-token\n"
    )
    return [
        {"patch": yaml.safe_dump(deployment, sort_keys=False)},
        {
            "target": {"kind": "Rollout", "name": "churn-api"},
            "patch": "- {op: replace, path: /spec/progressDeadlineSeconds, value: 240}",
        },
        {
            "target": {"kind": "ConfigMap", "name": "argo-rollouts-notification-configmap"},
            "patch": yaml.safe_dump(
                [
                    {
                        "op": "replace",
                        "path": "/data/service.webhook.github-dispatch",
                        "value": webhook,
                    }
                ]
            ),
        },
        # No AWS here: no ExternalSecret. Without the prediction store's Secret churn-api
        # serves with capture off.
        *(
            {
                "target": {"kind": "ExternalSecret", "name": name},
                "patch": yaml.safe_dump(
                    {
                        "apiVersion": "external-secrets.io/v1",
                        "kind": "ExternalSecret",
                        "metadata": {"name": name},
                        "$patch": "delete",
                    }
                ),
            }
            for name in ("argo-rollouts-notification-secret", "churn-predictions-db")
        ),
    ]


def _adapt_dev_overlay(dest: Path, digest: str, s3_endpoint: str, dispatch_url: str) -> None:
    overlay = dest / OVERLAY
    _pins().set_image(overlay / "kustomization.yaml", digest)
    kustomization = overlay / "kustomization.yaml"
    document = yaml.safe_load(kustomization.read_text())
    document["patches"] = [*document.get("patches", []), *_kind_patches(s3_endpoint, dispatch_url)]
    kustomization.write_text("---\n" + yaml.safe_dump(document, sort_keys=False))


def _without_external_secrets(dest: Path) -> None:
    """kind has no External Secrets: monitoring syncs without the receivers' credentials."""
    kustomization = dest / "monitoring/kustomization.yaml"
    document = yaml.safe_load(kustomization.read_text())
    document["resources"] = [
        entry
        for entry in document["resources"]
        if yaml.safe_load((kustomization.parent / entry).read_text()).get("kind")
        != "ExternalSecret"
    ]
    kustomization.write_text("---\n" + yaml.safe_dump(document, sort_keys=False))


def _deny_in_dev(dest: Path) -> None:
    kustomization = dest / "platform/apps/kyverno-policies/overlays/dev/kustomization.yaml"
    document = yaml.safe_load(kustomization.read_text())
    staging = yaml.safe_load((kustomization.parents[1] / "staging/kustomization.yaml").read_text())
    document["components"] = staging["components"]
    # No GitHub and no External Secrets here: the PolicyReport reporter (policies/ci) stays out.
    document["resources"] = [r for r in document["resources"] if not r.endswith("policies/ci")]
    kustomization.write_text("---\n" + yaml.safe_dump(document, sort_keys=False))


def prepare(dest: Path, *, repo_url: str, digest: str, s3_endpoint: str, dispatch_url: str) -> None:
    """Write the kind copy of this checkout into ``dest`` (which must not exist)."""
    for part in COPIED:
        shutil.copytree(ROOT / part, dest / part)
    _point_sources_at(dest, repo_url)
    _keep_only_release_apps(dest)
    for source, app in CLUSTER_VALUES.items():
        layer = dest / "clusters/dev/values" / f"{app}.yaml"
        merged = _merge(
            yaml.safe_load(layer.read_text()) if layer.exists() else {},
            yaml.safe_load((E2E / source).read_text()),
        )
        layer.write_text("---\n" + yaml.safe_dump(merged, sort_keys=False))
    _adapt_dev_overlay(dest, digest, s3_endpoint, dispatch_url)
    _without_external_secrets(dest)
    _deny_in_dev(dest)


def pin(dest: Path, sha256: str, version: str) -> None:
    """Pin the dev overlay of the copy to the model ``sha256`` as ``version``."""
    _pins()._write_model_pin(
        dest / OVERLAY / "model.yaml",
        {
            "MODEL_URI": f"s3://churn-dev-models/churn-model/sha256/{sha256}.onnx",
            "MODEL_SHA256": sha256,
            "MODEL_VERSION": version,
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    copy = sub.add_parser("prepare", help="write the kind copy")
    copy.add_argument("dest", type=Path)
    copy.add_argument("--repo-url", required=True)
    copy.add_argument("--digest", required=True, help="sha256:<64 hex> of the pushed image")
    copy.add_argument("--s3-endpoint", required=True)
    copy.add_argument("--dispatch-url", required=True)
    model = sub.add_parser("pin", help="pin a model in the copy's dev overlay")
    model.add_argument("dest", type=Path)
    model.add_argument("--sha256", required=True)
    model.add_argument("--version", required=True)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        if args.dest.exists():
            parser.error(f"{args.dest} exists; the copy is written fresh")
        prepare(
            args.dest,
            repo_url=args.repo_url,
            digest=args.digest,
            s3_endpoint=args.s3_endpoint,
            dispatch_url=args.dispatch_url,
        )
    else:
        pin(args.dest, args.sha256, args.version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
