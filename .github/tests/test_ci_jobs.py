"""What the jobs in .github/workflows promise beyond lint: the pinned files a job needs are
restored keyed on the pin, runs on main are never cancelled, an image is tagged with its commit,
the digest that is scanned is the digest that is pushed, and every AWS role is assumed from the
GitHub environment that role trusts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
CACHE_ACTION = "actions/cache@"
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials@"
ROLE = re.compile(r":role/churn-(?P<env>[^-]+(?:\}\})?)-github-actions$")


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return data


def make_targets_needing(prerequisites: set[str]) -> set[str]:
    """Targets of the Makefile that list one of ``prerequisites`` directly."""
    needing = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([a-z][a-z0-9-]*):([^=#]*)", line)
        if match and prerequisites & set(match.group(2).split()):
            needing.add(match.group(1))
    return needing


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def test_the_makefile_fetches_schemas_and_tools_for_the_targets_that_need_them() -> None:
    needing = make_targets_needing({"schemas", "tools"})
    assert {"test", "validate", "test-workflows", "test-rules", "test-ci"} <= needing


def test_every_ci_job_that_needs_pinned_files_restores_them_keyed_on_the_pin() -> None:
    needing = make_targets_needing({"schemas", "tools"})
    checked = []
    for name, job in load("ci.yaml")["jobs"].items():
        runs = [s.get("run", "") for s in steps(job)]
        targets = {t for run in runs for t in re.findall(r"^make (\S+)$", run, re.MULTILINE)}
        if not targets & needing:
            continue
        checked.append(name)
        caches = [
            (i, s) for i, s in enumerate(steps(job)) if s.get("uses", "").startswith(CACHE_ACTION)
        ]
        assert caches, f"job {name} runs make {targets & needing} without restoring .local"
        index, cache = caches[0]
        first_make = next(i for i, r in enumerate(runs) if r.startswith("make "))
        assert index < first_make, f"job {name} restores the cache after running make"
        assert ".local/schemas" in cache["with"]["path"]
        assert "hashFiles('tools/**')" in cache["with"]["key"], name
    assert {"pipeline", "manifests", "monitoring", "workflows-and-renovate"} <= set(checked)


def test_main_runs_are_never_cancelled() -> None:
    ci = load("ci.yaml")["concurrency"]
    assert ci["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    for name in ("release-churn-api.yaml", "release-workflows-image.yaml"):
        assert load(name)["concurrency"]["cancel-in-progress"] is False, name


def build_steps() -> list[dict[str, Any]]:
    return steps(load("build-image.yaml")["jobs"]["image"])


def test_an_image_is_tagged_with_its_commit_and_a_rerun_reuses_it() -> None:
    text = (WORKFLOWS / "build-image.yaml").read_text()
    assert "run_number" not in text
    assert "run_attempt" not in text
    job = load("build-image.yaml")["jobs"]["image"]
    assert job["env"]["TAG"] == "${{ github.sha }}"
    released = next(s for s in build_steps() if s.get("id") == "released")
    assert "imageTag=$TAG" in released["run"]
    builds = [s for s in build_steps() if "docker/build-push-action@" in s.get("uses", "")]
    assert len(builds) == 1  # one build: nothing is rebuilt between scan and push
    assert builds[0]["if"] == "steps.released.outputs.digest == ''"


def test_the_digest_scanned_is_the_digest_pushed_for_every_architecture() -> None:
    all_steps = build_steps()
    [push] = [s for s in all_steps if "docker/build-push-action@" in s.get("uses", "")]
    assert "push-by-digest=true" in push["with"]["outputs"]
    assert "tags" not in push["with"]  # no name a cluster could pull before the scan
    platforms = set(push["with"]["platforms"].split(","))
    assert platforms == {"linux/amd64", "linux/arm64"}
    pushed = "${{ steps.names.outputs.image }}@${{ steps.push.outputs.digest }}"
    scans = [
        s
        for s in all_steps
        if "trivy-action@" in s.get("uses", "") and s["with"].get("exit-code") == "1"
    ]
    assert {s["env"]["TRIVY_PLATFORM"] for s in scans} == platforms
    assert all(s["with"]["image-ref"] == pushed for s in scans)
    tag = next(i for i, s in enumerate(all_steps) if s.get("name", "").startswith("Tag the"))
    assert all(all_steps.index(s) < tag for s in scans), "the tag must come after every scan"
    assert "put-image" in all_steps[tag]["run"]


def aws_jobs() -> list[tuple[str, str, dict[str, Any], str]]:
    found = []
    for path in sorted(WORKFLOWS.glob("*.yaml")):
        for name, job in (yaml.safe_load(path.read_text()).get("jobs") or {}).items():
            for step in steps(job):
                if step.get("uses", "").startswith(AWS_CREDENTIALS):
                    role = step["with"]["role-to-assume"]
                    match = ROLE.search(role)
                    assert match, f"{path.name}/{name}: unexpected role {role}"
                    found.append((path.name, name, job, match.group("env")))
    return found


def test_workflows_assume_aws_roles() -> None:
    assert {(f, j) for f, j, _, _ in aws_jobs()} >= {
        ("build-image.yaml", "image"),
        ("promote.yaml", "copy-model"),
    }


@pytest.mark.parametrize(
    ("workflow", "job_name", "job", "env"),
    aws_jobs(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_every_aws_role_is_assumed_from_the_github_environment_it_trusts(
    workflow: str, job_name: str, job: dict[str, Any], env: str
) -> None:
    """Each role trusts `repo:<repo>:environment:<env>` only, so the job must name that env."""
    environment = job.get("environment")
    if isinstance(environment, dict):
        environment = environment.get("name")
    expected = "${{ inputs.to }}" if env == "${{ inputs.to }}" else env
    assert environment == expected, f"{workflow}/{job_name} assumes churn-{env}-... outside it"
