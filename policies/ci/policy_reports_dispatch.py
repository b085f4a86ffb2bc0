"""Tell GitHub, from inside a cluster, whether its PolicyReports are clean in our namespaces.

GitHub-hosted runners cannot reach a private cluster API, so the cluster reports itself: the
CronJob `policy-reports` (policies/ci/cronjob.yaml, synced to dev) runs this script, which

1. reads every PolicyReport through the Kubernetes API with the pod's service-account token;
2. judges them with policy_reports_clean.problems for the namespaces given;
3. reads the revision Argo CD synced the environment's Application from (status.sync.revision);
4. sends GitHub a repository_dispatch `policy-reports` with the environment, that revision and
   the verdict. The workflow .github/workflows/policy-reports.yaml turns it into the commit
   status `policy-reports/<env>`, which promote.yaml requires before promoting.

Standard library only (it runs on a bare Python image); the GitHub token comes from the file
--github-token-file (the ExternalSecret policy-reports-github). Exit 0 when the report was
sent, whatever the verdict; 2 when the cluster or GitHub cannot be asked.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The sibling module (mounted beside this one in the cluster).
from policy_reports_clean import problems

__all__ = ["DispatchError", "dispatch_payload", "main"]

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
REPORTS = "/apis/wgpolicyk8s.io/v1alpha2/policyreports"
APPLICATION = "/apis/argoproj.io/v1alpha1/namespaces/{namespace}/applications/{name}"
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
ENVIRONMENTS = ("dev", "staging", "prod")
# GitHub keeps a status description to 140 characters; the first problems say enough.
SHOWN = 3


class DispatchError(Exception):
    """The cluster or GitHub cannot be asked, or an answer is not what it should be."""


def _call(
    url: str,
    token: str,
    *,
    body: dict[str, Any] | None = None,
    context: ssl.SSLContext | None = None,
) -> Any:
    request = urllib.request.Request(  # noqa: S310 (the URLs are the cluster's and GitHub's)
        url,
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={
            "Accept": "application/json",
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:  # noqa: S310
            text = response.read()
    except urllib.error.HTTPError as exc:
        raise DispatchError(f"{request.method} {url} answered {exc.code}") from None
    except OSError as exc:
        raise DispatchError(f"cannot {request.method} {url}: {exc}") from None
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise DispatchError(f"{request.method} {url} did not answer JSON") from None


def dispatch_payload(
    reports: Any, application: Any, environment: str, namespaces: list[str]
) -> dict[str, Any]:
    """The repository_dispatch body: the environment, the revision it runs and the verdict."""
    if environment not in ENVIRONMENTS:
        raise DispatchError(f"unknown environment {environment!r}; expected one of {ENVIRONMENTS}")
    revision = ((application or {}).get("status") or {}).get("sync", {}).get("revision", "")
    if not isinstance(revision, str) or not COMMIT.match(revision):
        raise DispatchError(f"the Application reports no synced commit (got {revision!r})")
    try:
        found = problems(reports, namespaces)
    except ValueError as error:
        raise DispatchError(str(error)) from None
    summary = (
        f"clean in {', '.join(namespaces)}"
        if not found
        else f"{len(found)} failing: " + " | ".join(found[:SHOWN])
    )
    return {
        "event_type": "policy-reports",
        "client_payload": {
            "environment": environment,
            "revision": revision,
            "clean": not found,
            "summary": summary[:1000],
        },
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--environment", required=True, help="the cluster's environment")
    parser.add_argument("--namespace", action="append", required=True, help="ours, repeated")
    parser.add_argument("--application", required=True, help="Argo CD Application to read")
    parser.add_argument("--application-namespace", default="argocd")
    parser.add_argument("--repository", required=True, help="owner/name on GitHub")
    parser.add_argument("--github-api", default="https://api.github.com")
    parser.add_argument("--github-token-file", type=Path, required=True)
    parser.add_argument("--kube-api", help="default: the in-cluster API from the environment")
    parser.add_argument("--kube-token-file", type=Path, default=SERVICE_ACCOUNT / "token")
    parser.add_argument("--kube-ca-file", type=Path, default=SERVICE_ACCOUNT / "ca.crt")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if not REPOSITORY.match(args.repository):
            raise DispatchError(f"repository must be owner/name, got {args.repository!r}")
        kube_api = args.kube_api or "https://{}:{}".format(
            os.environ.get("KUBERNETES_SERVICE_HOST", ""),
            os.environ.get("KUBERNETES_SERVICE_PORT", "443"),
        )
        try:
            kube_token = args.kube_token_file.read_text(encoding="utf-8").strip()
            github_token = args.github_token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise DispatchError(f"cannot read a token: {exc}") from None
        if not github_token:
            raise DispatchError(f"{args.github_token_file} is empty")
        try:
            context = (
                ssl.create_default_context(cafile=str(args.kube_ca_file))
                if kube_api.startswith("https://")
                else None
            )
        except OSError as exc:
            raise DispatchError(f"cannot read the cluster's CA: {exc}") from None
        reports = _call(f"{kube_api}{REPORTS}", kube_token, context=context)
        application = _call(
            kube_api
            + APPLICATION.format(namespace=args.application_namespace, name=args.application),
            kube_token,
            context=context,
        )
        payload = dispatch_payload(reports, application, args.environment, args.namespace)
        _call(
            f"{args.github_api.rstrip('/')}/repos/{args.repository}/dispatches",
            github_token,
            body=payload,
        )
    except DispatchError as error:
        print(f"policy-reports: {error}", file=sys.stderr)
        return 2
    print(json.dumps(payload["client_payload"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
