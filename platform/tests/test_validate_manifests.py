"""The validator fails, naming the file and the field, on each kind of broken manifest.

Every case breaks one thing in a copy of the repository; the validator runs on the copy
(schemas only: checkov runs in `make validate`). Cases that cannot hide one another share a
copy, so the suite renders the repository a few times rather than once per case.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import copy_repository


def _edit(path: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        target = root / path
        text = target.read_text()
        assert old in text, f"{old!r} not in {path}"
        target.write_text(text.replace(old, new, 1))

    return apply


def _remove(path: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        shutil.rmtree(root / path)

    return apply


CHECKOV_GROUP = 2
# case -> (breakage, expected "file: field: message" prefix, copy it shares)
CASES = {
    "misspelled Rollout field": (
        _edit(
            "platform/apps/churn-api/base/rollout.yaml",
            "progressDeadlineAbort:",
            "progressDeadlineAbrot:",
        ),
        "platform/apps/churn-api/base/rollout.yaml: spec.progressDeadlineAbrot:",
        1,
    ),
    "misspelled field in an overlay's Rollout patch": (
        _edit(
            "platform/apps/churn-api/overlays/staging/rollout.yaml",
            "previewService:",
            "previewSevrice:",
        ),
        "platform/apps/churn-api/overlays/staging/rollout.yaml: "
        "spec.strategy.blueGreen.previewSevrice:",
        1,
    ),
    "missing overlay path": (
        _remove("platform/apps/churn-api/overlays/staging"),
        "platform/apps/churn-api/applicationset.yaml: spec.template.spec.source.path: "
        "source path platform/apps/churn-api/overlays/staging does not exist",
        2,
    ),
    "wrong apiVersion of a custom resource": (
        _edit(
            "platform/apps/churn-api/base/rollout.yaml",
            "argoproj.io/v1alpha1",
            "argoproj.io/v1beta1",
        ),
        "platform/apps/churn-api/base/rollout.yaml: apiVersion: Rollout/churn-api: "
        "no schema for Rollout in apiVersion argoproj.io/v1beta1",
        2,
    ),
    "wrong apiVersion of a core kind": (
        _edit("platform/apps/churn-api/base/hpa.yaml", "autoscaling/v2", "autoscaling/v2beta1"),
        "platform/apps/churn-api/base/hpa.yaml: apiVersion: HorizontalPodAutoscaler/churn-api: "
        "no schema",
        1,
    ),
    "unpinned chart": (
        _edit(
            "platform/apps/kyverno/applicationset.yaml",
            "targetRevision: 3.9.0",
            "targetRevision: 3.x",
        ),
        "platform/apps/kyverno/applicationset.yaml: spec.template.spec.sources[0].targetRevision:"
        " kyverno: chart version '3.x' is not pinned",
        1,
    ),
    "misspelled pod field": (
        _edit(
            "platform/apps/churn-api/base/deployment.yaml",
            "readOnlyRootFilesystem:",
            "readOnlyRootFileSystem:",
        ),
        "platform/apps/churn-api/base/deployment.yaml: "
        "spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem:",
        1,
    ),
    "an unpinned chart inside a kustomization": (
        _edit(
            "platform/apps/churn-api/overlays/dev/kustomization.yaml",
            "images:",
            "helmCharts:\n  - name: extra\n    repo: https://charts.example.com\n"
            "    version: '*'\nimages:",
        ),
        "platform/apps/churn-api/overlays/dev/kustomization.yaml: helmCharts[0].version: extra: "
        "chart version '*' is not pinned",
        3,
    ),
    "a checkov failure": (
        _edit(
            "platform/apps/churn-api/base/deployment.yaml",
            "allowPrivilegeEscalation: false",
            "allowPrivilegeEscalation: true",
        ),
        "platform/apps/churn-api/base/deployment.yaml: CKV_K8S_20: Deployment/churn-api in dev: "
        "checkov:",
        2,
    ),
    "a values file that does not exist": (
        _edit(
            "platform/apps/kyverno/applicationset.yaml",
            "ignoreMissingValueFiles: true",
            "ignoreMissingValueFiles: false",
        ),
        "platform/apps/kyverno/applicationset.yaml: spec.template.spec.sources[0].helm."
        "valueFiles[2]: values file clusters/dev/values/kyverno.yaml does not exist",
        2,
    ),
    "an Application in the default project": (
        _edit("clusters/dev/root.yaml", "project: platform", "project: default"),
        "clusters/dev/root.yaml: spec.project: must name an AppProject other than `default`",
        1,
    ),
    "an AnalysisTemplate the Rollout names but nobody renders": (
        _edit(
            "platform/apps/churn-api/overlays/prod/rollout.yaml",
            "templateName: churn-api-latency-p99",
            "templateName: churn-api-latency-p95",
        ),
        "platform/apps/churn-api/overlays/prod/rollout.yaml: "
        "spec.strategy.canary.analysis.templates[1].templateName: AnalysisTemplate "
        "'churn-api-latency-p95' is not rendered in churn",
        1,
    ),
}


@pytest.fixture(scope="session")
def broken_runs(
    vm: ModuleType,
    crd_schemas: Path,
    kubectl: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[int], tuple[int, str]]:
    """Run the validator once per shared copy, on demand: (exit code, output).

    pytest-xdist workers share the result through a file under the run's common temporary
    folder, so a copy is validated once whichever worker gets its cases.
    """
    shared = tmp_path_factory.getbasetemp().parent

    def run(group: int) -> tuple[int, str]:
        result = shared / f"broken-{group}.json"
        with (shared / f"broken-{group}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not result.exists():
                root = copy_repository(tmp_path_factory.mktemp(f"broken-{group}"))
                for breakage, _, case_group in CASES.values():
                    if case_group == group:
                        breakage(root)
                args = ["--root", str(root), "--crd-schemas", str(crd_schemas)]
                args += ["--kubectl", kubectl]
                # One copy also runs checkov, the real tool, as `make validate` does.
                if group != CHECKOV_GROUP:
                    args.append("--skip-checkov")
                elif not os.environ.get("CHECKOV"):
                    pytest.fail("set CHECKOV as the Makefile does (or run `make validate`)")
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    code = vm.main(args)
                result.write_text(json.dumps([code, out.getvalue()]))
        code, output = json.loads(result.read_text())
        return code, output

    return run


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_copy_fails_naming_file_and_field(
    broken_runs: Callable[[int], tuple[int, str]], case: str
) -> None:
    _, expected, group = CASES[case]
    code, out = broken_runs(group)
    assert code == 1
    assert f"ERROR {expected}" in out, out


def test_a_kind_without_a_schema_is_an_error(
    vm: ModuleType,
    repo_copy: Path,
    tmp_path: Path,
    kubectl: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = tmp_path / "no-schemas"
    empty.mkdir()
    code = vm.main(
        [
            "--root",
            str(repo_copy),
            "--crd-schemas",
            str(empty),
            "--kubectl",
            kubectl,
            "--skip-checkov",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(
        r"ERROR platform/apps/churn-api/base/rollout.yaml: apiVersion: Rollout/churn-api: "
        r"no schema for Rollout in apiVersion argoproj.io/v1alpha1 \(.*rollout_v1alpha1.json\)",
        out,
    ), out


def test_the_table_counts_every_environment(
    broken_runs: Callable[[int], tuple[int, str]],
) -> None:
    _, out = broken_runs(1)
    lines = out.splitlines()
    assert lines[0].split() == [
        "environment",
        "rendered",
        "validated",
        "checkov",
        "passed",
        "failed",
        "skipped",
    ]
    rows = {line.split()[0]: line.split() for line in lines[2:5]}
    assert set(rows) == {"dev", "staging", "prod"}
    # churn-api alone renders more than ten resources in each environment, and the broken
    # Rollout and HPA are rendered but not validated.
    assert all(int(row[1]) > 10 for row in rows.values())
    assert all(int(row[2]) < int(row[1]) for row in rows.values())


def test_missing_tools_and_folders_are_clear_errors(
    vm: ModuleType, tmp_path: Path, crd_schemas: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert vm.main(["--crd-schemas", str(tmp_path / "nowhere"), "--skip-checkov"]) == 2
    assert "CRD schema folder" in capsys.readouterr().out
    assert (
        vm.main(
            [
                "--crd-schemas",
                str(crd_schemas),
                "--kubectl",
                str(tmp_path / "kubectl"),
                "--skip-checkov",
            ]
        )
        == 2
    )
    assert "kubectl not found" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("version", "pinned"),
    [
        ("2.38.0", True),
        ("v1.2.3", True),
        ("1.0.0-rc.1", True),
        ("2.*", False),
        ("^1.2.0", False),
        ("~1.2", False),
        ("1.x", False),
        ("HEAD", False),
        ("", False),
        (None, False),
        (">=1.0.0", False),
    ],
)
def test_chart_pins_are_exact_versions(vm: ModuleType, version: object, pinned: bool) -> None:
    assert (vm.check_chart_pinned(version) is None) is pinned
