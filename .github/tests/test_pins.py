"""Tests of .github/scripts/pins.py, the one writer of release and promotion pull requests.

Each test builds a small repository layout in a temporary folder, runs the edit, and reads the
result back with a YAML parser: the change is one file, the values are right, the rest survives.
The last tests hold the real pin files to the format the script edits.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".github" / "scripts" / "pins.py"
OVERLAYS = Path("platform/apps/churn-api/overlays")
ECR = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
SHA = "c" * 64
ARGO = Path("workflows/src/churn_workflows/argo.py")
ARGO_PY = """\"\"\"Shared template settings.\"\"\"

from typing import Final

# Placeholder until the first release; the release workflow's PR replaces it.
IMAGE_DIGEST: Final = "sha256:" + "0" * 64
IMAGE: Final = f"churn-workflows@{IMAGE_DIGEST}"
"""

KUSTOMIZATION = f"""---
# The dev overlay.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
images:
  - name: busybox
    newTag: "1.36"
  - name: churn-api
    digest: {DIGEST_A}
patches:
  - path: model.yaml
"""

MODEL = """---
# The model this environment serves.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: churn-api
spec:
  template:
    spec:
      containers:
        - name: churn-api
          env:
            - name: MODEL_URI
              value: s3://churn-{env}-models/churn-model/sha256/{sha}.onnx
            - name: MODEL_SHA256
              value: "{sha}"
            - name: MODEL_VERSION
              value: "{version}"
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """dev runs model 7 and image A; staging and prod still have the bootstrap pin."""
    for env in ("dev", "staging", "prod"):
        overlay = tmp_path / OVERLAYS / env
        overlay.mkdir(parents=True)
        (overlay / "kustomization.yaml").write_text(KUSTOMIZATION)
        sha, version = (SHA, "7") if env == "dev" else ("0" * 64, "0")
        (overlay / "model.yaml").write_text(MODEL.format(env=env, sha=sha, version=version))
    argo = tmp_path / ARGO
    argo.parent.mkdir(parents=True)
    argo.write_text(ARGO_PY)
    return tmp_path


def container_env(path: Path) -> dict[str, str]:
    doc = yaml.safe_load(path.read_text())
    env = doc["spec"]["template"]["spec"]["containers"][0]["env"]
    return {item["name"]: item["value"] for item in env}


def images(path: Path) -> dict[str, dict[str, str]]:
    return {i["name"]: i for i in yaml.safe_load(path.read_text())["images"]}


def run_cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(repo), *args],
        capture_output=True,
        text=True,
        check=False,
    )


# ----------------------------------------------------------------------------- set-image


def test_set_image_moves_only_the_churn_api_digest(pins: ModuleType, repo: Path) -> None:
    path = repo / OVERLAYS / "dev" / "kustomization.yaml"
    assert pins.set_image(path, DIGEST_B) is True
    after = path.read_text()
    assert images(path)["churn-api"] == {"name": "churn-api", "digest": DIGEST_B}
    assert images(path)["busybox"] == {"name": "busybox", "newTag": "1.36"}
    assert after.replace(DIGEST_B, DIGEST_A) == KUSTOMIZATION, "only the digest changes"
    assert ECR not in after, "the registry is each cluster's, never written here"


def test_set_image_twice_changes_nothing(pins: ModuleType, repo: Path) -> None:
    path = repo / OVERLAYS / "dev" / "kustomization.yaml"
    assert pins.set_image(path, DIGEST_A) is False
    assert path.read_text() == KUSTOMIZATION


def test_set_image_replaces_a_tag_by_the_digest(pins: ModuleType, repo: Path) -> None:
    path = repo / OVERLAYS / "dev" / "kustomization.yaml"
    path.write_text(KUSTOMIZATION.replace(f"    digest: {DIGEST_A}\n", "    newTag: latest\n"))
    pins.set_image(path, DIGEST_B)
    assert images(path)["churn-api"] == {"name": "churn-api", "digest": DIGEST_B}


@pytest.mark.parametrize("digest", ["sha256:abc", "a" * 64, "latest"])
def test_set_image_refuses_a_digest_that_is_not_sha256(
    pins: ModuleType, repo: Path, digest: str
) -> None:
    path = repo / OVERLAYS / "dev" / "kustomization.yaml"
    with pytest.raises(pins.PinError, match="digest must be sha256:<64 lower-case hex>"):
        pins.set_image(path, digest)
    assert path.read_text() == KUSTOMIZATION


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("churn-api", "image name must be registry/repository"),
        (f"{ECR}/churn-api:1.0", "image name must be registry/repository"),
        (f"{ECR}/churn-workflows", "is not the churn-api repository"),
    ],
)
def test_a_release_image_must_be_the_churn_api_repository(
    pins: ModuleType, image: str, message: str
) -> None:
    with pytest.raises(pins.PinError, match=message):
        pins.check_image(image)


# The overlays' earlier form, still in Git's history the revert reads: the entry was named
# after the full ECR image.
NAMED_BY_IMAGE = f"""---
images:
  # An image promotion is a one-line change of this digest.
  - name: {ECR}/churn-api
    digest: {DIGEST_A}
"""


def test_an_entry_named_by_its_image_changes_one_line(pins: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "kustomization.yaml"
    path.write_text(NAMED_BY_IMAGE)
    assert pins.read_image(path) == (f"{ECR}/churn-api", DIGEST_A)
    assert pins.set_image(path, DIGEST_B) is True
    assert path.read_text() == NAMED_BY_IMAGE.replace(DIGEST_A, DIGEST_B)


def test_set_image_names_a_missing_entry(pins: ModuleType, repo: Path) -> None:
    path = repo / OVERLAYS / "dev" / "kustomization.yaml"
    path.write_text(KUSTOMIZATION.replace("name: churn-api", "name: other"))
    with pytest.raises(pins.PinError, match="no `images:` entry for churn-api"):
        pins.set_image(path, DIGEST_B)
    path.write_text("---\nresources: []\n")
    with pytest.raises(pins.PinError, match="no top-level `images:` list"):
        pins.set_image(path, DIGEST_B)


def test_set_image_cli_writes_step_outputs(repo: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "github_output"
    args = ["--github-output", str(outputs), "set-image", "--env", "dev"]
    result = run_cli(repo, *args, "--image", f"{ECR}/churn-api", "--digest", DIGEST_B)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["changed"] == "true"
    assert outputs.read_text().splitlines() == [
        "changed=true",
        f"file={OVERLAYS}/dev/kustomization.yaml",
        f"image={ECR}/churn-api@{DIGEST_B}",
    ]


def test_cli_bad_digest_exits_2_naming_the_problem(repo: Path) -> None:
    args = ["set-image", "--env", "dev", "--image", f"{ECR}/churn-api", "--digest", "latest"]
    result = run_cli(repo, *args)
    assert result.returncode == 2
    assert "digest must be sha256:<64 lower-case hex>, got 'latest'" in result.stderr


def test_cli_another_repositorys_image_exits_2_and_changes_nothing(repo: Path) -> None:
    args = ["set-image", "--env", "dev", "--image", f"{ECR}/churn-workflows", "--digest", DIGEST_B]
    result = run_cli(repo, *args)
    assert result.returncode == 2
    assert "is not the churn-api repository" in result.stderr
    assert (repo / OVERLAYS / "dev" / "kustomization.yaml").read_text() == KUSTOMIZATION


# ----------------------------------------------------------------------------- promote


def test_promote_model_copies_the_pin_to_the_target_bucket(pins: ModuleType, repo: Path) -> None:
    summary = pins.copy_model(repo, "dev", "staging")
    assert container_env(repo / OVERLAYS / "staging" / "model.yaml") == {
        "MODEL_URI": f"s3://churn-staging-models/churn-model/sha256/{SHA}.onnx",
        "MODEL_SHA256": SHA,
        "MODEL_VERSION": "7",
    }
    assert summary["file"] == f"{OVERLAYS}/staging/model.yaml"
    assert summary["source_uri"] == f"s3://churn-dev-models/churn-model/sha256/{SHA}.onnx"
    assert summary["target_uri"] == f"s3://churn-staging-models/churn-model/sha256/{SHA}.onnx"
    assert summary["changed"] == "true"
    staging = (repo / OVERLAYS / "staging" / "model.yaml").read_text()
    assert staging.startswith("---\n# The model this environment serves.\n")
    assert f'value: "{SHA}"' in staging, "quoting is kept"
    assert (repo / OVERLAYS / "dev" / "model.yaml").read_text() == MODEL.format(
        env="dev", sha=SHA, version="7"
    )


def test_promote_model_refuses_the_bootstrap_pin(pins: ModuleType, repo: Path) -> None:
    with pytest.raises(pins.PinError, match="staging still has the bootstrap pin"):
        pins.copy_model(repo, "staging", "prod")


@pytest.mark.parametrize(
    ("source", "target"), [("dev", "prod"), ("staging", "dev"), ("dev", "dev")]
)
def test_promote_goes_one_step_at_a_time(
    pins: ModuleType, repo: Path, source: str, target: str
) -> None:
    with pytest.raises(pins.PinError, match="one step at a time"):
        pins.copy_model(repo, source, target)
    with pytest.raises(pins.PinError, match="one step at a time"):
        pins.copy_image(repo, source, target)


def test_promote_model_refuses_a_uri_that_does_not_match_the_digest(
    pins: ModuleType, repo: Path
) -> None:
    dev = repo / OVERLAYS / "dev" / "model.yaml"
    dev.write_text(dev.read_text().replace(f"sha256/{SHA}.onnx", f"sha256/{'d' * 64}.onnx"))
    with pytest.raises(pins.PinError, match="MODEL_URI must be s3://churn-dev-models/"):
        pins.copy_model(repo, "dev", "staging")


def test_promote_model_refuses_a_malformed_pin(pins: ModuleType, repo: Path) -> None:
    dev = repo / OVERLAYS / "dev" / "model.yaml"
    dev.write_text(dev.read_text().replace("- name: MODEL_VERSION", "- name: VERSION"))
    with pytest.raises(pins.PinError, match="expected one MODEL_VERSION entry, found 0"):
        pins.copy_model(repo, "dev", "staging")
    dev.write_text(MODEL.format(env="dev", sha="XYZ", version="7"))
    with pytest.raises(pins.PinError, match="MODEL_SHA256 is not 64 lower-case hex"):
        pins.copy_model(repo, "dev", "staging")


def test_promote_image_copies_the_digest(pins: ModuleType, repo: Path) -> None:
    dev = repo / OVERLAYS / "dev" / "kustomization.yaml"
    pins.set_image(dev, DIGEST_B)
    summary = pins.copy_image(repo, "dev", "staging")
    assert images(repo / OVERLAYS / "staging" / "kustomization.yaml")["churn-api"]["digest"] == (
        DIGEST_B
    )
    assert summary == {
        "file": f"{OVERLAYS}/staging/kustomization.yaml",
        "source_file": f"{OVERLAYS}/dev/kustomization.yaml",
        "image": f"churn-api@{DIGEST_B}",
        "digest": DIGEST_B,
        "changed": "true",
    }
    assert (repo / OVERLAYS / "prod" / "kustomization.yaml").read_text() == KUSTOMIZATION


def test_promote_cli_reports_an_unchanged_target(repo: Path) -> None:
    result = run_cli(repo, "promote", "--kind", "image", "--from", "dev", "--to", "staging")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["changed"] == "false"


def test_promote_cli_rejects_an_unknown_environment(repo: Path) -> None:
    result = run_cli(repo, "promote", "--kind", "model", "--from", "qa", "--to", "staging")
    assert result.returncode == 2
    assert "invalid choice: 'qa'" in result.stderr


# ----------------------------------------------------------------------------- workflows image


def test_set_workflows_image_changes_the_digest_line(pins: ModuleType, repo: Path) -> None:
    path = repo / ARGO
    assert pins.set_workflows_image(path, f"{ECR}/churn-workflows@{DIGEST_B}") is True
    assert path.read_text() == ARGO_PY.replace(
        'IMAGE_DIGEST: Final = "sha256:" + "0" * 64', f'IMAGE_DIGEST: Final = "{DIGEST_B}"'
    )
    assert pins.set_workflows_image(path, f"{ECR}/churn-workflows@{DIGEST_B}") is False


def test_set_workflows_image_writes_the_digest_only(pins: ModuleType, repo: Path) -> None:
    """The registry the release pushed to is not written: each cluster names its own."""
    path = repo / ARGO
    fork = "444455556666.dkr.ecr.us-east-1.amazonaws.com"
    assert pins.set_workflows_image(path, f"{fork}/churn-workflows@{DIGEST_B}") is True
    assert path.read_text() == ARGO_PY.replace(
        'IMAGE_DIGEST: Final = "sha256:" + "0" * 64', f'IMAGE_DIGEST: Final = "{DIGEST_B}"'
    )
    assert fork not in path.read_text()


@pytest.mark.parametrize(
    "image",
    [f"{ECR}/churn-workflows:latest", f"{ECR}/churn-api@{DIGEST_B}", f"churn-workflows@{DIGEST_B}"],
)
def test_set_workflows_image_refuses_a_bad_reference(
    pins: ModuleType, repo: Path, image: str
) -> None:
    with pytest.raises(pins.PinError, match="must be <registry>/churn-workflows@sha256"):
        pins.set_workflows_image(repo / ARGO, image)
    assert (repo / ARGO).read_text() == ARGO_PY


def test_set_workflows_image_needs_exactly_one_constant(pins: ModuleType, repo: Path) -> None:
    path = repo / ARGO
    path.write_text('IMAGE = "x"\n')
    with pytest.raises(pins.PinError, match=r"expected one `IMAGE_DIGEST = \.\.\.` line, found 0"):
        pins.set_workflows_image(path, f"{ECR}/churn-workflows@{DIGEST_B}")


def test_set_workflows_image_cli(repo: Path) -> None:
    result = run_cli(repo, "set-workflows-image", "--image", f"{ECR}/churn-workflows@{DIGEST_B}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["file"] == str(ARGO)


# ----------------------------------------------------------------------------- the real pins


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_real_model_pins_have_the_format_promote_edits(pins: ModuleType, env: str) -> None:
    pin = pins.read_model_pin(ROOT / OVERLAYS / env / "model.yaml")
    assert set(pin) == {"MODEL_URI", "MODEL_SHA256", "MODEL_VERSION"}
    assert pin["MODEL_URI"].startswith(f"s3://churn-{env}-models/churn-model/sha256/")


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_real_overlays_pin_churn_api_by_digest(pins: ModuleType, env: str) -> None:
    name, digest = pins.read_image(ROOT / OVERLAYS / env / "kustomization.yaml")
    assert name == "churn-api", "the registry is each cluster's (the ApplicationSet's)"
    assert digest.startswith("sha256:")


def test_the_real_workflows_image_is_one_digest_line(pins: ModuleType, tmp_path: Path) -> None:
    real = (ROOT / ARGO).read_text()
    copy = tmp_path / "argo.py"
    copy.write_text(real)
    pins.set_workflows_image(copy, f"{ECR}/churn-workflows@{DIGEST_B}")
    changed = [
        (old, new)
        for old, new in zip(real.splitlines(), copy.read_text().splitlines(), strict=True)
        if old != new
    ]
    assert changed == [(changed[0][0], f'IMAGE_DIGEST: Final = "{DIGEST_B}"')]


# ----------------------------------------------------------------------------- platform pins

REVISION = "d" * 40


@pytest.fixture
def platform_repo(tmp_path: Path) -> Path:
    """The real pins files and ApplicationSets, copied: what a platform promotion reads."""
    for env in ("staging", "prod"):
        target = tmp_path / "clusters" / env / "pins.yaml"
        target.parent.mkdir(parents=True)
        target.write_text((ROOT / "clusters" / env / "pins.yaml").read_text())
    for appset in (ROOT / "platform/apps").glob("*/applicationset.yaml"):
        target = tmp_path / appset.relative_to(ROOT)
        target.parent.mkdir(parents=True)
        target.write_text(appset.read_text())
    return tmp_path


def pinned(repo: Path, env: str) -> dict[str, str]:
    data = yaml.safe_load((repo / "clusters" / env / "pins.yaml").read_text())["data"]
    return {key: str(value) for key, value in data.items()}


def bump_chart(repo: Path, app: str, version: str) -> None:
    path = repo / "platform/apps" / app / "applicationset.yaml"
    old = pinned(repo, "staging")[app]
    text = path.read_text()
    path.write_text(text.replace(f"targetRevision: {old}", f"targetRevision: {version}", 1))


def test_platform_from_dev_takes_mains_charts_and_the_revision_dev_runs(
    pins: ModuleType, platform_repo: Path
) -> None:
    before = (platform_repo / "clusters/staging/pins.yaml").read_text()
    bump_chart(platform_repo, "kyverno", "3.9.9")
    summary = pins.copy_platform(platform_repo, "dev", "staging", REVISION)

    after = pinned(platform_repo, "staging")
    assert after["kyverno"] == "3.9.9"
    assert after["platform-revision"] == REVISION
    changed = [
        (old, new)
        for old, new in zip(
            before.splitlines(),
            (platform_repo / "clusters/staging/pins.yaml").read_text().splitlines(),
            strict=True,
        )
        if old != new
    ]
    assert [new for _, new in changed] == [f"  platform-revision: {REVISION}", "  kyverno: 3.9.9"]
    assert summary["file"] == "clusters/staging/pins.yaml"
    assert summary["changed"] == "true"
    assert "kyverno 3.9.0 -> 3.9.9" in summary["moved"]
    assert pinned(platform_repo, "prod") == pinned(ROOT, "prod"), "prod moves only from staging"


def test_platform_from_staging_copies_stagings_pins_to_prod(
    pins: ModuleType, platform_repo: Path
) -> None:
    pins.copy_platform(platform_repo, "dev", "staging", REVISION)
    summary = pins.copy_platform(platform_repo, "staging", "prod", "")
    assert pinned(platform_repo, "prod") == pinned(platform_repo, "staging")
    assert summary["source_file"] == "clusters/staging/pins.yaml"
    again = pins.copy_platform(platform_repo, "staging", "prod", "")
    assert again["changed"] == "false"
    assert again["moved"] == "nothing"


@pytest.mark.parametrize(
    ("source", "target", "revision", "message"),
    [
        ("dev", "staging", "main", "--revision must be the 40-hex commit dev runs"),
        ("dev", "prod", REVISION, "one step at a time"),
    ],
)
def test_platform_promotion_refuses_a_bad_revision_or_a_skipped_step(
    pins: ModuleType, platform_repo: Path, source: str, target: str, revision: str, message: str
) -> None:
    with pytest.raises(pins.PinError, match=message):
        pins.copy_platform(platform_repo, source, target, revision)
    assert pinned(platform_repo, "staging") == pinned(ROOT, "staging")


def test_platform_promotion_refuses_pins_that_name_different_charts(
    pins: ModuleType, platform_repo: Path
) -> None:
    path = platform_repo / "clusters/staging/pins.yaml"
    path.write_text(path.read_text().replace("  mlflow:", "  mlflow-server:"))
    with pytest.raises(pins.PinError, match="pin different charts"):
        pins.copy_platform(platform_repo, "staging", "prod", "")


def test_a_pins_file_without_its_revision_is_named(pins: ModuleType, platform_repo: Path) -> None:
    path = platform_repo / "clusters/staging/pins.yaml"
    path.write_text(path.read_text().replace("  platform-revision:", "  revision:"))
    with pytest.raises(pins.PinError, match=r"staging/pins\.yaml: needs `platform-revision"):
        pins.copy_platform(platform_repo, "dev", "staging", REVISION)


def test_platform_cli_writes_step_outputs(platform_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "github-output"
    result = run_cli(
        platform_repo, "--github-output", str(out), "promote", "--kind", "platform",
        "--from", "dev", "--to", "staging", "--revision", REVISION,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"revision={REVISION}\n" in out.read_text()
    assert "file=clusters/staging/pins.yaml\n" in out.read_text()


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_first_target_revision_of_each_pinned_app_is_its_charts(
    pins: ModuleType, env: str
) -> None:
    """What the text edit reads is what the pins component replaces: sources.0.targetRevision."""
    for app in set(pinned(ROOT, env)) - {"platform-revision"}:
        path = ROOT / "platform/apps" / app / "applicationset.yaml"
        source = yaml.safe_load(path.read_text())["spec"]["template"]["spec"]["sources"][0]
        assert pins.chart_version(ROOT, app) == str(source["targetRevision"]), app
