"""Gate a promotion on the source cluster's PolicyReports: clean in our namespaces.

Dev runs every policy in Audit, so a violation there is a report, not a refusal; staging and
prod deny the same thing at admission. Promoting from an environment whose reports show a
failure in our namespaces would ship a release the next environment refuses. Usage, against
the source cluster:

    kubectl get policyreports.wgpolicyk8s.io -A -o json \\
      | python policies/ci/policy_reports_clean.py

The namespaces are those of the `churn` AppProject (platform/argocd/projects/churn.yaml);
`--namespace` overrides them. Exit 0 when every report result there is pass or skip (and at
least one report exists: no report is no evidence), 1 otherwise, naming each failure;
2 when the input is not a report list.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["application_namespaces", "main", "problems"]

ROOT = Path(__file__).resolve().parents[2]
CLEAN = {"pass", "skip"}


def application_namespaces() -> list[str]:
    """The namespaces our own workloads run in: the churn AppProject's destinations."""
    # Imported here: the in-cluster reporter (policy_reports_dispatch.py) runs this module on a
    # bare Python image, with the namespaces given, and never reads the project file.
    import yaml  # noqa: PLC0415

    project = yaml.safe_load(
        (ROOT / "platform" / "argocd" / "projects" / "churn.yaml").read_text(encoding="utf-8")
    )
    return sorted({d["namespace"] for d in project["spec"]["destinations"]})


def problems(reports: dict[str, Any], namespaces: list[str]) -> list[str]:
    """Every failing result in `namespaces`, or why the reports prove nothing."""
    if not isinstance(reports, dict) or not isinstance(reports.get("items"), list):
        raise ValueError("expected a report list (kubectl get policyreports -A -o json)")
    found: list[str] = []
    seen = 0
    for report in reports["items"]:
        namespace = (report.get("metadata") or {}).get("namespace", "")
        if namespace not in namespaces:
            continue
        seen += 1
        scope = report.get("scope") or {}
        for result in report.get("results") or []:
            outcome = str(result.get("result", "")).lower()
            if outcome in CLEAN:
                continue
            resources = result.get("resources") or [scope]
            what = ", ".join(f"{r.get('kind', '?')}/{r.get('name', '?')}" for r in resources)
            found.append(
                f"{namespace}: {outcome} {result.get('policy', '?')} on {what}: "
                f"{str(result.get('message', '')).strip()}"
            )
    if not seen:
        found.append(f"no PolicyReport in {', '.join(namespaces)}: is Kyverno reporting?")
    return found


def main(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("reports", nargs="?", type=Path, help="JSON file (default: stdin)")
    parser.add_argument("--namespace", action="append", help="instead of the churn project's")
    args = parser.parse_args(argv)
    text = args.reports.read_text(encoding="utf-8") if args.reports else (stdin or sys.stdin).read()
    namespaces = args.namespace or application_namespaces()
    try:
        found = problems(json.loads(text), namespaces)
    except (json.JSONDecodeError, ValueError) as error:
        print(f"ERROR not a PolicyReport list: {error}", file=sys.stderr)
        return 2
    for line in found:
        print(f"ERROR {line}", file=sys.stderr)
    if found:
        return 1
    print(f"OK: PolicyReports clean in {', '.join(namespaces)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
