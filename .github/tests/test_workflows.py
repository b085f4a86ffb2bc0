"""Checks on every workflow under .github/workflows, including the ones other areas own.

1. actionlint (with shellcheck on every `run:`), zizmor offline and checkov's github_actions
   checks pass.
2. Our own rules: actions pinned by a 40-hex commit with a `# vX.Y.Z` comment, explicit
   least-privilege permissions on every job, `persist-credentials: false`, no `${{ }}` inside
   `run:`, a concurrency group on every triggered workflow.
3. A broken copy (unpinned action, job without permissions) fails those same checks.
4. ci.yaml calls the make targets users run, wires the reusable workflows in, and filters on
   every top-level folder; nothing is applied to a cluster from CI.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from churn_workflows import render

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
VENV_BIN = ROOT / ".venv" / "bin"
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^v\d+\.\d+\.\d+\b")
ALLOWED_TOP_LEVEL = ({}, {"contents": "read"})
# Commands that would change a cluster; CI renders and validates, Argo CD applies.
CLUSTER_WRITES = re.compile(
    r"\b(kubectl\s+(apply|create|delete|patch|replace|rollout)|helm\s+(install|upgrade)"
    r"|argocd\s+app\s+sync|tofu\s+apply|terraform\s+apply)\b"
)


def workflow_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path.name}: not a mapping"
    # PyYAML reads the bare key `on` as the boolean True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def triggers(data: dict[str, Any]) -> set[str]:
    on = data.get("on")
    if isinstance(on, str):
        return {on}
    if isinstance(on, list):
        return set(on)
    return set(on or {})


def audit(directory: Path) -> list[str]:
    """Every breach of the hardening rules in `directory`, one line each."""
    problems: list[str] = []
    for path in workflow_files(directory):
        name = path.name
        text = path.read_text()
        if path.suffix != ".yaml":
            problems.append(f"{name}: use .yaml, never .yml")
        if not text.startswith("---"):
            problems.append(f"{name}: YAML starts with ---")
        for number, line in enumerate(text.splitlines(), 1):
            match = USES.match(line)
            if not match:
                continue
            ref, comment = match.group("ref"), match.group("comment") or ""
            if ref.startswith("docker://"):
                if not re.search(r"@sha256:[0-9a-f]{64}$", ref):
                    problems.append(f"{name}:{number}: {ref} is not pinned by digest")
            elif ref.startswith("./"):
                if not (directory.parent.parent / ref).is_file():
                    problems.append(f"{name}:{number}: {ref} does not exist")
            elif not PINNED.match(ref):
                problems.append(f"{name}:{number}: {ref} is not pinned by a 40-hex commit SHA")
            elif not VERSION_COMMENT.match(comment.strip()):
                problems.append(f"{name}:{number}: {ref} lacks a '# vX.Y.Z' comment")

        data = load(path)
        if data.get("permissions", "missing") not in ALLOWED_TOP_LEVEL:
            problems.append(f"{name}: top-level permissions must be {{}} or contents: read")
        on = triggers(data)
        if "workflow_call" not in on:  # a called workflow runs under its caller's group
            group = data.get("concurrency")
            # Cancel superseded pull-request runs; queue (never cancel) what runs on main.
            allowed = (True, False, "${{ github.event_name == 'pull_request' }}")
            if not isinstance(group, dict) or group.get("cancel-in-progress") not in allowed:
                problems.append(f"{name}: needs a concurrency group with cancel-in-progress set")
        for job_name, job in (data.get("jobs") or {}).items():
            where = f"{name}: job {job_name}"
            if "permissions" not in job:
                problems.append(f"{where} has no explicit permissions")
            elif job["permissions"] in ("write-all", "read-all"):
                problems.append(f"{where} uses {job['permissions']}")
            for step in job.get("steps") or []:
                uses = str(step.get("uses", ""))
                persist = (step.get("with") or {}).get("persist-credentials")
                if uses.startswith("actions/checkout@") and persist is not False:
                    problems.append(f"{where}: checkout without persist-credentials: false")
                run = str(step.get("run", ""))
                if "${{" in run:
                    problems.append(f"{where}: ${{{{ }}}} inside run: (pass it through env:)")
    return problems


def run_tool(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def actionlint(directory: Path) -> subprocess.CompletedProcess[str]:
    files = [str(p.relative_to(directory.parent.parent)) for p in workflow_files(directory)]
    args = [str(VENV_BIN / "actionlint"), "-no-color"]
    if (VENV_BIN / "shellcheck").exists():
        args += ["-shellcheck", str(VENV_BIN / "shellcheck")]
    return run_tool([*args, *files], cwd=directory.parent.parent)


def zizmor(github_dir: Path) -> subprocess.CompletedProcess[str]:
    args = [str(VENV_BIN / "zizmor"), "--offline", "--no-progress", "--color=never", "."]
    return run_tool(args, cwd=github_dir)


# ----------------------------------------------------------------------------- the real files


def test_workflows_exist() -> None:
    names = {p.name for p in workflow_files(WORKFLOWS)}
    expected = {"ci.yaml", "release-churn-api.yaml", "release-workflows-image.yaml", "promote.yaml"}
    assert expected <= names


def test_actionlint_passes_on_every_workflow() -> None:
    result = actionlint(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_passes_offline() -> None:
    result = zizmor(ROOT / ".github")
    assert result.returncode == 0, result.stdout + result.stderr
    for path in workflow_files(WORKFLOWS):
        assert f"completed ./workflows/{path.name}" in result.stderr, f"{path.name} not audited"


def test_checkov_github_actions_checks_pass() -> None:
    checkov = os.environ.get("CHECKOV")
    if not checkov:
        uv = ROOT / ".local" / "tools" / "bin" / "uv"
        checkov = f"{uv} tool run --quiet --from checkov==3.3.30 checkov"
    args = [*shlex.split(checkov), "-d", ".github", "--framework", "github_actions"]
    result = run_tool([*args, "--skip-download", "--compact", "--quiet"], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.search(r"Passed checks: (\d+)", result.stdout)
    assert passed, result.stdout
    assert int(passed.group(1)) > 0


def test_hardening_rules_hold() -> None:
    assert audit(WORKFLOWS) == []


def test_each_action_runs_at_one_version_in_every_workflow() -> None:
    """A job left on an old release (checkout v4 beside v6) is drift nobody chose."""
    versions: dict[str, set[str]] = {}
    for path in workflow_files(WORKFLOWS):
        for line in path.read_text().splitlines():
            if (match := USES.match(line)) and "@" in match["ref"]:
                action, _, sha = match["ref"].partition("@")
                versions.setdefault(action, set()).add(f"{sha} {match['comment'] or ''}")
    assert versions
    drifted = {action: sorted(v) for action, v in versions.items() if len(v) > 1}
    assert drifted == {}


def test_shell_scripts_pass_shellcheck() -> None:
    scripts = sorted([*(ROOT / ".github" / "scripts").glob("*.sh"), *(ROOT / "tools").glob("*.sh")])
    assert scripts
    result = run_tool([str(VENV_BIN / "shellcheck"), *map(str, scripts)], cwd=ROOT)
    assert result.returncode == 0, result.stdout


# ----------------------------------------------------------------------------- a broken copy


@pytest.fixture
def broken_github(tmp_path: Path) -> Path:
    """A copy of .github where one action is unpinned and one job lost its permissions."""
    github = tmp_path / ".github"
    shutil.copytree(ROOT / ".github", github, ignore=shutil.ignore_patterns("__pycache__"))
    ci = github / "workflows" / "ci.yaml"
    text = ci.read_text()
    text = text.replace(
        "dorny/paths-filter@de90cc6fb38fc0963ad72b210f1f284cd68cea36 # v3.0.2",
        "dorny/paths-filter@v3",
    )
    text = text.replace(
        "    timeout-minutes: 15\n    permissions:\n      contents: read\n    steps:\n"
        "      - uses: actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2\n"
        "        with:\n          persist-credentials: false\n      - run: make lint\n",
        "    timeout-minutes: 15\n    steps:\n"
        "      - uses: actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2\n"
        "      - run: make lint\n",
    )
    assert text != ci.read_text(), "the broken copy did not change; update this fixture"
    ci.write_text(text)
    return github


def test_broken_copy_fails_our_rules(broken_github: Path) -> None:
    problems = audit(broken_github / "workflows")
    assert any("dorny/paths-filter@v3 is not pinned" in p for p in problems), problems
    assert "ci.yaml: job lint has no explicit permissions" in problems
    assert "ci.yaml: job lint: checkout without persist-credentials: false" in problems


def test_broken_copy_fails_zizmor(broken_github: Path) -> None:
    result = zizmor(broken_github)
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout
    assert "artipacked" in result.stdout


def test_expression_in_run_is_caught(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "x.yml").write_text(
        "on: pull_request\npermissions: write-all\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
        "    permissions: {}\n    steps:\n      - run: echo ${{ github.head_ref }}\n"
    )
    problems = audit(workflows)
    assert "x.yml: use .yaml, never .yml" in problems
    assert "x.yml: YAML starts with ---" in problems
    assert "x.yml: top-level permissions must be {} or contents: read" in problems
    assert "x.yml: needs a concurrency group with cancel-in-progress set" in problems
    assert "x.yml: job a: ${{ }} inside run: (pass it through env:)" in problems


# ----------------------------------------------------------------------------- what ci.yaml runs


def ci() -> dict[str, Any]:
    return load(WORKFLOWS / "ci.yaml")


def run_lines(data: dict[str, Any]) -> list[str]:
    return [
        str(step["run"])
        for job in data["jobs"].values()
        for step in job.get("steps") or []
        if "run" in step
    ]


def test_ci_runs_on_pull_requests_and_main() -> None:
    data = ci()
    assert triggers(data) == {"pull_request", "push"}
    assert data["on"]["push"]["branches"] == ["main"]
    assert str(data["env"]["UV_LOCKED"]) == "1"


def test_ci_calls_the_make_targets_users_run() -> None:
    makefile = (ROOT / "Makefile").read_text()
    defined = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, re.MULTILINE))
    called = {
        target
        for line in run_lines(ci())
        for target in re.findall(r"\bmake\s+([a-z][a-z0-9-]*)", line)
    }
    expected = {"lint", "test-service", "test-workflows", "render-check", "validate"}
    expected |= {"test-policies", "test-rules", "test-infra", "test-ci"}
    assert expected <= called, f"ci.yaml does not call: {sorted(expected - called)}"
    assert called <= defined, f"ci.yaml calls undefined targets: {sorted(called - defined)}"


def test_ci_runs_the_checks_that_need_the_internet() -> None:
    runs = "\n".join(run_lines(ci()))
    scripts = (ROOT / ".github" / "scripts" / "validate-rendered.sh").read_text()
    assert "kyverno test policies/" in runs
    assert "make render-check" in runs
    assert "renovate-config-validator" in runs
    assert "validate-rendered.sh" in runs
    assert 'kubeconform" -strict' in scripts
    catalog = "datreeio/CRDs-catalog/main/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}"
    assert catalog in scripts
    trivy = [
        step["with"]
        for step in ci()["jobs"]["infra"]["steps"]
        if str(step.get("uses", "")).startswith("aquasecurity/trivy-action@")
    ]
    assert trivy == [
        {
            "version": "${{ env.TRIVY_VERSION }}",
            "scan-type": "config",
            "scan-ref": "infra/opentofu",
            "severity": "HIGH,CRITICAL",
            "exit-code": "1",
        }
    ]


def test_reusable_workflows_are_wired_in() -> None:
    """ci.yaml calls the reusable workflows, and each declares `on: workflow_call`."""
    jobs = ci()["jobs"]
    called = {job["uses"] for job in jobs.values() if "uses" in job}
    assert called == {
        "./.github/workflows/opentofu.yaml",
        "./.github/workflows/e2e-kind.yaml",
        "./.github/workflows/policies-charts.yaml",
    }
    for ref in called:
        path = ROOT / ref
        assert path.is_file(), f"{ref} is missing: ci.yaml calls it"
        data = load(path)
        assert "workflow_call" in triggers(data), f"{ref} must declare `on: workflow_call`"
        assert not {"pull_request", "push"} & triggers(data), f"{ref} runs through ci.yaml only"
        # In a called workflow github.workflow is the caller's name: its own group would deadlock.
        assert "concurrency" not in data, f"{ref}: leave concurrency to the caller"


def test_every_job_is_gated_by_ci_ok() -> None:
    jobs = ci()["jobs"]
    gate = jobs["ci-ok"]
    assert gate["if"] == "always()"
    assert set(gate["needs"]) == set(jobs) - {"ci-ok"}


def tracked_files() -> list[str]:
    """The files Git tracks (local leftovers such as an mlruns/ folder do not count)."""
    result = run_tool(["git", "ls-files", "-z"], cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return [p for p in result.stdout.split("\0") if p]


def test_path_filters_cover_every_top_level_folder() -> None:
    step = ci()["jobs"]["changes"]["steps"][0]
    filters = yaml.safe_load(step["with"]["filters"])
    patterns = {
        str(p)
        for group in filters.values()
        for item in group
        for p in (item if isinstance(item, list) else [item])
    }
    folders = {p.split("/")[0] for p in tracked_files() if "/" in p and not p.startswith(".")}
    folders -= {"docs"}
    uncovered = {f for f in folders if not any(p.startswith(f"{f}/") for p in patterns)}
    assert not uncovered, f"no ci.yaml filter covers {sorted(uncovered)}"
    outputs = set(ci()["jobs"]["changes"]["outputs"])
    assert outputs == set(filters) - {"common"}


def test_nothing_is_applied_to_a_cluster_from_ci() -> None:
    for path in workflow_files(WORKFLOWS):
        if path.name == "e2e-kind.yaml":
            continue  # applies to its own throwaway kind cluster only
        for line in run_lines(load(path)):
            assert not CLUSTER_WRITES.search(line), f"{path.name}: {line}"


def test_release_workflows_run_on_the_default_branch_only() -> None:
    for name in ("release-churn-api.yaml", "release-workflows-image.yaml"):
        data = load(WORKFLOWS / name)
        assert triggers(data) == {"push", "workflow_dispatch"}, name
        assert data["on"]["push"]["branches"] == ["main"], name
        assert data["jobs"]["image"]["uses"] == "./.github/workflows/build-image.yaml"


def test_release_paths_cannot_retrigger_themselves() -> None:
    """The workflows-image bump edits argo.py and manifests: those must not start a release."""
    paths = load(WORKFLOWS / "release-workflows-image.yaml")["on"]["push"]["paths"]
    assert "!workflows/src/churn_workflows/argo.py" in paths
    assert "!workflows/manifests/**" in paths
    api_paths = load(WORKFLOWS / "release-churn-api.yaml")["on"]["push"]["paths"]
    assert not any(p.startswith("platform/") for p in api_paths)


def test_the_workflows_image_release_carries_every_folder_render_writes() -> None:
    """`make render` rewrites the templates and the create-databases hook from argo.py's
    digest: a pull request leaving one out would fail the render check and run the old image."""
    (step,) = [
        s
        for s in load(WORKFLOWS / "release-workflows-image.yaml")["jobs"]["pull-request"]["steps"]
        if str(s.get("uses", "")).startswith("peter-evans/create-pull-request@")
    ]
    added = set(step["with"]["add-paths"].split())
    for folder in (render.MANIFESTS, render.DATABASES_MANIFESTS):
        assert f"{folder.relative_to(ROOT).as_posix()}/**" in added, folder


@pytest.mark.parametrize("name", ["release-churn-api.yaml", "release-workflows-image.yaml"])
def test_release_workflows_build_an_existing_dockerfile(name: str) -> None:
    """The build context is the repository root (one uv workspace, one uv.lock)."""
    dockerfile = load(WORKFLOWS / name)["jobs"]["image"]["with"]["dockerfile"]
    assert (ROOT / dockerfile).is_file(), f"{name} builds {dockerfile}, which does not exist"


def test_build_image_scans_signs_and_pushes_multi_arch() -> None:
    data = load(WORKFLOWS / "build-image.yaml")
    steps = data["jobs"]["image"]["steps"]
    uses = [str(s.get("uses", "")).split("@")[0] for s in steps]
    order = [
        "aws-actions/configure-aws-credentials",
        "docker/setup-qemu-action",
        "docker/setup-buildx-action",
        "docker/build-push-action",
        "aquasecurity/trivy-action",
        "sigstore/cosign-installer",
    ]
    position = -1
    for action in order:  # each one after the previous: push by digest, scan it, then sign
        assert action in uses[position + 1 :], f"{action} missing or out of order"
        position = uses.index(action, position + 1)
    scan = next(s for s in steps if s.get("name", "").startswith("trivy image"))
    assert scan["with"]["severity"] == "CRITICAL"
    assert scan["with"]["ignore-unfixed"] is True
    assert scan["with"]["exit-code"] == "1"
    push = next(s for s in steps if s.get("id") == "push")
    assert push["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert "push=true" in push["with"]["outputs"]
    aws = next(s for s in steps if "configure-aws-credentials" in str(s.get("uses", "")))
    assert aws["with"]["role-to-assume"] == (
        "arn:aws:iam::${{ vars.AWS_ACCOUNT_ID }}:role/churn-dev-github-actions"
    )
    sign = next(s for s in steps if s.get("name", "").startswith("Sign"))
    assert 'cosign sign --yes "$IMAGE@$DIGEST"' in sign["run"]


def test_promote_inputs_are_typed() -> None:
    inputs = load(WORKFLOWS / "promote.yaml")["on"]["workflow_dispatch"]["inputs"]
    assert {k: (v["type"], v["options"]) for k, v in inputs.items()} == {
        "kind": ("choice", ["model", "image", "platform"]),
        "from": ("choice", ["dev", "staging"]),
        "to": ("choice", ["staging", "prod"]),
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["helm", "v3.0.0"], "unknown tool 'helm' (expected kyverno or kubeconform)"),
        (["kyverno", "1.19.1"], "version must look like v1.2.3, got '1.19.1'"),
        (["kubeconform", "latest"], "version must look like v1.2.3, got 'latest'"),
    ],
)
def test_install_tool_refuses_bad_arguments_before_downloading(
    args: list[str], message: str, tmp_path: Path
) -> None:
    script = ROOT / ".github" / "scripts" / "install-tool.sh"
    result = run_tool(["bash", str(script), *args], cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / ".local").exists()


# ----------------------------------------------------------------------------- validate-rendered.sh


def fake_tool(bin_dir: Path, name: str, log: Path, exit_code: int = 0) -> None:
    """A stand-in for a binary this machine cannot download: logs its arguments, exits as told."""
    path = bin_dir / name
    path.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "{log}"\nexit {exit_code}\n')
    path.chmod(0o755)


def run_validate_rendered(bin_dir: Path, out: Path) -> subprocess.CompletedProcess[str]:
    script = ROOT / ".github" / "scripts" / "validate-rendered.sh"
    env = {**os.environ, "BIN": str(bin_dir), "OUT": str(out)}
    return subprocess.run(
        ["bash", str(script)], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_validate_rendered_checks_every_environment(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    fake_tool(tmp_path, "kubeconform", log)  # FakeKubeconform
    fake_tool(tmp_path, "kyverno", log)  # FakeKyverno
    out = tmp_path / "rendered"
    result = run_validate_rendered(tmp_path, out)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    for env in ("dev", "staging", "prod"):
        for root in (f"clusters/{env}", f"platform/apps/churn-api/overlays/{env}"):
            rendered = out / (root.replace("/", "_") + ".yaml")
            docs = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
            assert docs, f"{root} rendered nothing"
            assert any(c.startswith("kubeconform -strict") and str(rendered) in c for c in calls)
            apply = f"kyverno apply {out}/policies.yaml --resource {rendered} --remove-color"
            assert apply in calls
        # As Argo CD renders it: the cluster's registry (the ApplicationSet's override), which
        # the Kyverno policies check, on the overlay's digest.
        churn_api = (out / f"platform_apps_churn-api_overlays_{env}.yaml").read_text()
        images = set(re.findall(r"image: (\S*churn-api\S*)", churn_api))
        ecr = r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/churn-api@sha256:[0-9a-f]{64}"
        assert images, f"{env}: churn-api renders no image"
        assert all(re.fullmatch(ecr, image) for image in images), images
    policies = [d for d in yaml.safe_load_all((out / "policies.yaml").read_text()) if d]
    assert {d["kind"] for d in policies} & {"ValidatingPolicy", "ClusterPolicy"}
    assert "Test" not in {d["kind"] for d in policies}, "test fixtures must not be applied"


def test_validate_rendered_fails_when_kubeconform_does(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    fake_tool(tmp_path, "kubeconform", log, exit_code=1)
    fake_tool(tmp_path, "kyverno", log)
    result = run_validate_rendered(tmp_path, tmp_path / "rendered")
    assert result.returncode != 0
    assert len(log.read_text().splitlines()) == 1, "stops at the first invalid environment"
