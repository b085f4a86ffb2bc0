"""Render every add-on chart at its pinned version and apply the policies that reach it.

For each environment, the Applications `clusters/<env>` generates (platform/tests/argocd_tree)
name their Helm charts: repository, chart, exact version, release, destination namespace,
value files and `valuesObject`. Each is rendered with `helm template` exactly so, and the
rendered manifests go through `kyverno apply` with that environment's policy overlay:

- the policies in Deny whose `namespaceSelector` reaches the destination namespace (what the
  API server would send to Kyverno at admission): any failure fails the job, since Argo CD could
  not apply that chart;
- the Audit policies, with `--audit-warn`: their findings are printed as the PolicyReports
  would show them, without failing.

`plan` prints the jobs as JSON (no tool needed); `run` needs `helm` and `kyverno` on PATH and
writes the rendered charts under `--out`. GitHub Actions runs it
(.github/workflows/policies-charts.yaml).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "platform" / "tests"))
sys.path.insert(0, str(ROOT / "policies" / "tests"))

from argocd_tree import generated_apps, render_source  # noqa: E402
from kyverno_cel import namespace_labels, selector_matches  # noqa: E402

__all__ = ["ChartJob", "helm_command", "main", "plan", "policies_for"]

ENVIRONMENTS = ("dev", "staging", "prod")
# The API groups the clusters serve when Argo CD renders a chart, so a chart's optional
# ServiceMonitor or PrometheusRule renders as it does in the cluster.
API_VERSIONS = ("monitoring.coreos.com/v1",)


@dataclass(frozen=True)
class ChartJob:
    """One chart source of one environment's Application."""

    env: str
    app: str
    repo: str
    chart: str
    version: str
    release: str
    namespace: str
    value_files: tuple[str, ...]
    values_object: dict[str, Any] | None


def plan(env: str) -> list[ChartJob]:
    """Every chart source the Applications of `env` sync, with its resolved values."""
    jobs = []
    for app in generated_apps(env):
        refs = {s.spec["ref"] for s in app.sources if s.spec.get("ref")}
        for source in app.sources:
            if not source.chart:
                continue
            helm = source.spec.get("helm") or {}
            files = []
            for value_file in helm.get("valueFiles") or []:
                ref, _, rest = str(value_file).lstrip("$").partition("/")
                if ref not in refs:
                    raise ValueError(f"{app.name}: {value_file} names no `ref` source")
                if (ROOT / rest).is_file():
                    files.append(rest)
                elif not helm.get("ignoreMissingValueFiles"):
                    raise ValueError(f"{app.name}: values file {rest} does not exist")
            jobs.append(
                ChartJob(
                    env=env,
                    app=app.name,
                    repo=source.spec["repoURL"],
                    chart=source.chart,
                    version=source.spec["targetRevision"],
                    release=helm.get("releaseName") or app.name,
                    namespace=app.spec["destination"]["namespace"],
                    value_files=tuple(files),
                    values_object=helm.get("valuesObject"),
                )
            )
    return jobs


def helm_command(job: ChartJob, values_object_file: Path | None) -> list[str]:
    """The `helm template` command that renders `job` as Argo CD would."""
    command = [
        "helm",
        "template",
        job.release,
        job.chart,
        "--repo",
        job.repo,
        "--version",
        job.version,
        "--namespace",
        job.namespace,
    ]
    for version in API_VERSIONS:
        command += ["--api-versions", version]
    for value_file in job.value_files:
        command += ["--values", str(ROOT / value_file)]
    if values_object_file is not None:
        command += ["--values", str(values_object_file)]
    return command


def policies_for(env: str, namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(Deny policies whose scope reaches `namespace`, Audit policies) of the env's overlay."""
    # The policies as the environment's Application syncs them (cluster facts patched in).
    (app,) = [a for a in generated_apps(env) if a.name == f"kyverno-policies-{env}"]
    documents = [d for source in app.sources for d in render_source(source)]
    labels = namespace_labels(namespace)
    deny, audit = [], []
    for document in documents:
        if document["kind"] != "ValidatingPolicy":
            continue
        selector = document["spec"]["matchConstraints"].get("namespaceSelector") or {}
        if not selector_matches(selector, labels):
            continue
        (deny if "Deny" in document["spec"]["validationActions"] else audit).append(document)
    return deny, audit


def _apply(policies: list[dict[str, Any]], resources: Path, audit: bool, work: Path) -> int:
    if not policies:
        return 0
    policy_file = work / ("audit.yaml" if audit else "deny.yaml")
    policy_file.write_text(yaml.safe_dump_all(policies), encoding="utf-8")
    command = ["kyverno", "apply", str(policy_file), "--resource", str(resources)]
    if audit:
        command.append("--audit-warn")
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, check=False).returncode  # noqa: S603 - our own command line


def run(envs: list[str], out: Path) -> int:
    failures = []
    for env in envs:
        for job in plan(env):
            work = out / env / job.app
            work.mkdir(parents=True, exist_ok=True)
            values_object_file = None
            if job.values_object:
                values_object_file = work / "values-object.yaml"
                values_object_file.write_text(yaml.safe_dump(job.values_object), encoding="utf-8")
            command = helm_command(job, values_object_file)
            print("+", " ".join(command), flush=True)
            rendered = subprocess.run(  # noqa: S603 - our own command line
                command, capture_output=True, text=True, check=False
            )
            if rendered.returncode != 0:
                failures.append(f"{env}/{job.app}: helm template failed: {rendered.stderr}")
                continue
            manifests = work / "rendered.yaml"
            manifests.write_text(rendered.stdout, encoding="utf-8")
            deny, audit = policies_for(env, job.namespace)
            if _apply(deny, manifests, audit=False, work=work) != 0:
                failures.append(f"{env}/{job.app}: refused at admission by {len(deny)} policies")
            _apply(audit, manifests, audit=True, work=work)
    for failure in failures:
        print(f"ERROR {failure}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["plan", "run"])
    parser.add_argument("--env", action="append", choices=ENVIRONMENTS)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "addon-charts")
    args = parser.parse_args(argv)
    envs = args.env or list(ENVIRONMENTS)
    if args.command == "plan":
        print(json.dumps([asdict(j) for env in envs for j in plan(env)], indent=2))
        return 0
    return run(envs, args.out)


if __name__ == "__main__":
    sys.exit(main())
