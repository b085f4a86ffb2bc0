"""Checks on renovate.json.

1. It validates against Renovate's JSON schema (draft-04). The schema file is a setting:
   RENOVATE_SCHEMA, which the Makefile sets and `make schemas` provides (pinned by sha256 in
   tools/renovate-schema.sha256). The full `renovate-config-validator` runs in CI.
2. Its rules do what the repository relies on: every rule described, the Argo family grouped,
   automerge for dev-tool patches only and never for prod, model.yaml ignored, and the regex
   manager really extracts every `# renovate:` annotated version in the repository.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / "renovate.json").read_text())
SCHEMA_PATH = Path(
    os.environ.get("RENOVATE_SCHEMA", ROOT.parent / "shared/schemas/renovate/renovate-schema.json")
)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    if not SCHEMA_PATH.is_file():
        pytest.fail(f"Renovate's JSON schema is not at {SCHEMA_PATH}: run `make schemas`")
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def renovate_pattern(pattern: str) -> re.Pattern[str]:
    """A Renovate `/regex/` string as a Python pattern (JS named groups become Python's)."""
    assert pattern.startswith("/")
    assert pattern.endswith("/")
    return re.compile(pattern[1:-1].replace("(?<", "(?P<"))


def glob_matches(glob: str, path: str) -> bool:
    """minimatch-style: `**` crosses folders, `*` does not."""
    regex = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif glob[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        else:
            regex, i = regex + re.escape(glob[i]), i + 1
    return re.fullmatch(regex, path) is not None


def package_name_matches(patterns: list[str], name: str) -> bool:
    return any(
        renovate_pattern(p).search(name) if p.startswith("/") else p == name for p in patterns
    )


def rules() -> list[dict[str, Any]]:
    return list(CONFIG["packageRules"])


# ----------------------------------------------------------------------------- schema


def test_renovate_json_validates_against_the_schema(validator: jsonschema.Draft4Validator) -> None:
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(CONFIG)]
    assert errors == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("automerge",), "yes"),
        (("packageRules", 0, "matchUpdateTypes"), ["huge"]),
        (("packageRules",), {"description": "not a list"}),
        (("lockFileMaintenance", "enabled"), "true"),
        (("labels",), "dependencies"),
    ],
)
def test_a_broken_config_fails_the_schema(
    validator: jsonschema.Draft4Validator, path: tuple[Any, ...], value: object
) -> None:
    broken = copy.deepcopy(CONFIG)
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert list(validator.iter_errors(broken)), f"schema accepted {path} = {value!r}"


# ----------------------------------------------------------------------------- rules


def test_extends_the_recommended_config_and_pins_actions_to_digests() -> None:
    assert CONFIG["extends"] == ["config:recommended", "helpers:pinGitHubActionDigestsToSemver"]


def test_every_rule_and_custom_manager_has_a_description() -> None:
    undescribed = [r for r in rules() + CONFIG["customManagers"] if not r.get("description")]
    assert undescribed == []


def test_managers_cover_every_kind_of_pin() -> None:
    assert set(CONFIG["enabledManagers"]) == {
        "argocd",
        "kustomize",
        "kubernetes",
        "dockerfile",
        "terraform",
        "pep621",
        "pip-compile",
        "github-actions",
        "custom.regex",
    }


def test_every_hash_locked_tool_is_kept_fresh_by_pip_compile() -> None:
    patterns = [renovate_pattern(p) for p in CONFIG["pip-compile"]["managerFilePatterns"]]
    locked = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("tools/*/requirements.txt"))
    assert "tools/uv/requirements.txt" in locked
    for path in locked:
        assert any(p.search(path) for p in patterns), f"Renovate does not update {path}"
        header = (ROOT / path).read_text().splitlines()[1]
        assert "--generate-hashes" in header
        assert path.replace(".txt", ".in") in header, f"{path}: its header must name its .in"


def test_argocd_files_are_found_in_platform_and_clusters_only() -> None:
    patterns = [renovate_pattern(p) for p in CONFIG["argocd"]["managerFilePatterns"]]

    def matched(path: str) -> bool:
        return any(p.search(path) for p in patterns)

    assert matched("platform/apps/argo-rollouts/applicationset.yaml")
    assert matched("platform/argocd/argocd.yaml")
    assert matched("clusters/dev/kustomization.yaml")
    assert not matched("workflows/manifests/churn-train.yaml")
    assert not matched(".github/workflows/ci.yaml")


@pytest.mark.parametrize(
    "name",
    ["argo-cd", "argo-rollouts", "argo-workflows", "quay.io/argoproj/argocd", "hera"],
)
def test_the_argo_family_is_one_group(name: str) -> None:
    groups = [r for r in rules() if package_name_matches(r.get("matchPackageNames", []), name)]
    assert [r["groupName"] for r in groups if "groupName" in r] == ["argo"]


@pytest.mark.parametrize("name", ["kyverno", "kube-prometheus-stack", "boto3"])
def test_other_packages_are_not_in_the_argo_group(name: str) -> None:
    groups = [r for r in rules() if package_name_matches(r.get("matchPackageNames", []), name)]
    assert all("groupName" not in r for r in groups)


def test_our_own_images_are_left_to_the_release_workflows() -> None:
    # The names churn-api's overlays pin, and any account's ECR form of ours.
    overlays = ROOT / "platform" / "apps" / "churn-api" / "overlays"
    pinned = {
        image["name"]
        for kustomization in overlays.glob("*/kustomization.yaml")
        for image in yaml.safe_load(kustomization.read_text(encoding="utf-8"))["images"]
    }
    assert pinned == {"churn-api"}
    ecr = "444455556666.dkr.ecr.us-east-1.amazonaws.com"
    disabled = [r for r in rules() if r.get("enabled") is False]
    for name in [*pinned, f"{ecr}/churn-api", f"{ecr}/churn-workflows", "churn-workflows"]:
        assert any(package_name_matches(r["matchPackageNames"], name) for r in disabled), name


def test_automerge_only_for_patch_updates_of_dev_tools() -> None:
    automerging = [r for r in rules() if r.get("automerge") is True]
    assert automerging
    for rule in automerging:
        assert rule["matchUpdateTypes"] == ["patch"], rule["description"]
        assert set(rule["matchManagers"]) <= {"pep621", "custom.regex"}, rule["description"]
        if rule["matchManagers"] == ["pep621"]:
            assert rule["matchDepTypes"] == ["dependency-groups"]
    assert CONFIG.get("automerge") is not True


@pytest.mark.parametrize(
    "path",
    [
        "platform/apps/churn-api/overlays/prod/kustomization.yaml",
        "clusters/prod/kustomization.yaml",
        "platform/apps/kyverno/values-prod.yaml",
        "infra/opentofu/envs/prod/versions.tf",
    ],
)
def test_prod_is_never_automerged(path: str) -> None:
    """The last rule that matches a prod file turns automerge off (later rules win)."""
    matching = [
        r
        for r in rules()
        if "automerge" in r and any(glob_matches(g, path) for g in r.get("matchFileNames", ["**"]))
    ]
    assert matching
    assert matching[-1]["automerge"] is False


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_model_pins_are_ignored(env: str) -> None:
    path = f"platform/apps/churn-api/overlays/{env}/model.yaml"
    assert any(glob_matches(g, path) for g in CONFIG["ignorePaths"])
    kustomization = f"platform/apps/churn-api/overlays/{env}/kustomization.yaml"
    assert not any(glob_matches(g, kustomization) for g in CONFIG["ignorePaths"])


def test_labels_by_update_type() -> None:
    labelled = {
        kind: rule["addLabels"]
        for rule in rules()
        if "addLabels" in rule and "matchFileNames" not in rule
        for kind in rule["matchUpdateTypes"]
    }
    assert {"major", "minor", "patch", "digest"} <= set(labelled)
    assert len({tuple(v) for v in labelled.values()}) >= 4


# ----------------------------------------------------------------------------- annotations


def annotated_files() -> list[Path]:
    manager = CONFIG["customManagers"][0]
    patterns = [renovate_pattern(p) for p in manager["managerFilePatterns"]]
    skip = {".git", ".venv", ".local", "node_modules", "build"}
    found = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if skip & set(rel.parts) or not path.is_file():
            continue
        if any(p.search(rel.as_posix()) for p in patterns):
            found.append(path)
    return found


def test_the_regex_manager_reads_every_annotated_version() -> None:
    """Every `# renovate:` line in a managed file yields a dependency with a version."""
    manager = CONFIG["customManagers"][0]
    regexes = [re.compile(m.replace("(?<", "(?P<")) for m in manager["matchStrings"]]
    files = annotated_files()
    assert ROOT / "Makefile" in files
    assert ROOT / ".github/workflows/ci.yaml" in files
    extracted: dict[str, str] = {}
    for path in files:
        text = path.read_text()
        annotations = len(re.findall(r"# renovate: ", text))
        deps = [m.groupdict() for r in regexes for m in r.finditer(text)]
        rel = path.relative_to(ROOT)
        assert len(deps) == annotations, f"{rel}: {annotations} annotations, {len(deps)} extracted"
        for dep in deps:
            assert dep["datasource"] in {
                "pypi",
                "npm",
                "github-releases",
                "docker",
                "github-tags",
                "repology",
            }
            extracted[dep["depName"]] = dep["currentValue"]
    assert "uv" not in extracted, "uv is pinned with hashes in tools/uv, not by an annotation"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", extracted["kyverno/kyverno"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", extracted["renovate"])


def test_the_regex_manager_ignores_a_line_without_a_version() -> None:
    manager = CONFIG["customManagers"][0]
    regex = re.compile(manager["matchStrings"][0].replace("(?<", "(?P<"))
    assert regex.search("# renovate: datasource=pypi depName=uv\nUV_VERSION := 0.13.8\n")
    assert not regex.search("# renovate: datasource=pypi depName=uv\nUV := .local/bin/uv\n")


# ----------------------------------------------------------------------------- unannotated pins


def extracted_by(manager: dict[str, Any]) -> list[dict[str, str]]:
    """What one custom regex manager extracts from the repository's files, as Renovate would."""
    patterns = [renovate_pattern(p) for p in manager["managerFilePatterns"]]
    regexes = [re.compile(m.replace("(?<", "(?P<")) for m in manager["matchStrings"]]
    found = []
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_file() and any(p.search(rel) for p in patterns):
            found += [m.groupdict() for r in regexes for m in r.finditer(path.read_text())]
    return found


def manager_for(words: str) -> dict[str, Any]:
    [manager] = [m for m in CONFIG["customManagers"] if words in m["description"]]
    return dict(manager)


@pytest.mark.parametrize(
    ("words", "per_file", "files"),
    [
        ("CRD schema catalog commit", 1, "tools/crd-schemas.sha256"),
        ("configuration schema", 1, "tools/renovate-schema.sha256"),
        ("Argo CD chart version OpenTofu", 1, "infra/opentofu/envs/*/terraform.tfvars"),
        ("argocd-apps chart", 1, "infra/opentofu/envs/*/terraform.tfvars"),
        ("EKS Kubernetes version", 1, "infra/opentofu/envs/*/terraform.tfvars"),
        ("RDS PostgreSQL major version", 1, "infra/opentofu/envs/*/terraform.tfvars"),
        ("kind release", 1, ".github/workflows/e2e-kind.yaml"),
    ],
)
def test_each_unannotated_pin_is_extracted(words: str, per_file: int, files: str) -> None:
    """A pin with no `# renovate:` line still has a manager that finds it in every file."""
    count = len(list(ROOT.glob(files)))
    assert count
    deps = extracted_by(manager_for(words))
    assert len(deps) == per_file * count, deps
    assert all(d.get("currentValue") or d.get("currentDigest") for d in deps)


def test_every_eks_add_on_version_is_extracted() -> None:
    deps = extracted_by(manager_for("EKS add-on versions"))
    for tfvars in ROOT.glob("infra/opentofu/envs/*/terraform.tfvars"):
        pinned = re.findall(r'"([a-z-]+)"\s*=\s*"v[^"]+-eksbuild', tfvars.read_text())
        assert pinned, tfvars
        assert set(pinned) <= {d["depName"] for d in deps}, tfvars


def test_the_crd_catalog_pin_is_the_commit_the_lock_downloads_from() -> None:
    [dep] = extracted_by(manager_for("CRD schema catalog commit"))
    lock = (ROOT / "tools/crd-schemas.sha256").read_text()
    assert f"/CRDs-catalog/{dep['currentDigest']}/" in lock


def test_the_argo_cd_chart_in_tfvars_moves_with_the_argo_group() -> None:
    manager = manager_for("Argo CD chart version OpenTofu")
    [group] = [r for r in rules() if r.get("groupName") == "argo"]
    assert package_name_matches(group["matchPackageNames"], manager["depNameTemplate"])


def test_required_version_is_opentofu_and_moves_with_tofu_version() -> None:
    [rule] = [r for r in rules() if r.get("matchDepTypes") == ["required_version"]]
    assert rule["matchManagers"] == ["terraform"]
    assert rule["overridePackageName"] == "opentofu/opentofu"
    groups = [
        r
        for r in rules()
        if package_name_matches(r.get("matchPackageNames", []), "opentofu/opentofu")
    ]
    assert groups
    assert {r["groupName"] for r in groups} == {rule["groupName"]}


def test_automerge_waits_for_a_minimum_release_age() -> None:
    for rule in rules():
        if rule.get("automerge") is True:
            days = re.fullmatch(r"(\d+) days?", rule.get("minimumReleaseAge", ""))
            assert days, rule["description"]
            assert int(days.group(1)) >= 3, rule["description"]


@pytest.mark.parametrize(
    "name", ["aquasecurity/trivy", "sigstore/cosign", "zizmor", "checkov", "renovate"]
)
def test_security_tooling_is_never_automerged(name: str) -> None:
    """The last rule that says anything about automerge for the tool turns it off."""
    deciding = [
        r
        for r in rules()
        if "automerge" in r and package_name_matches(r.get("matchPackageNames", []), name)
    ]
    assert deciding
    assert deciding[-1]["automerge"] is False


def test_uv_and_its_build_backend_are_one_group() -> None:
    groups = {
        r["groupName"]
        for r in rules()
        if "groupName" in r and package_name_matches(r.get("matchPackageNames", []), "uv_build")
    }
    assert groups == {
        r["groupName"]
        for r in rules()
        if "groupName" in r and package_name_matches(r.get("matchPackageNames", []), "uv")
    }
    assert groups
