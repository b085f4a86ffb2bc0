"""The names the roots create are the names the manifests in platform/ and clusters/ use.

Steps:
1. Derive, from the HCL itself, what each root creates: IAM roles, buckets, ECR
   repositories, the database and its secret, the Argo CD chart version.
2. Scan every YAML file under platform/ and clusters/ for role ARNs, bucket names, image
   registries, regions, cluster names and Secrets Manager keys.
3. Every name the manifests use must exist in the root of its environment, in the right
   account and region, for the service account in the right namespace; and every workload
   role a root creates must be used by that environment's manifests.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from tofu_hcl import ENVIRONMENTS, INFRA, REPO, load_config, load_hcl

sys.path.insert(0, str(REPO / "platform" / "tests"))

# What Argo CD renders, offline (platform/tests).
import argocd_tree

MANIFEST_DIRS = (REPO / "platform", REPO / "clusters")
ROLE_ARN = re.compile(r"arn:aws:iam::(\d{12}):role/churn-(dev|staging|prod|ENV)-([a-z0-9-]+)")
BUCKET = re.compile(r"(?:s3://|bucket:\s*[\"']?)(churn-(dev|staging|prod|ENV)-[a-z0-9-]+)")
REGISTRY = re.compile(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([a-z0-9-]+)")
SECRET_KEY = re.compile(r"\b(churn-(dev|staging|prod|ENV)/[A-Za-z0-9/_+=.@-]+)")


def _subst(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("${" + key + "}", value)
    assert "${" not in template, f"unresolved template {template!r}"
    return template


@dataclass(frozen=True)
class Created:
    """What one root creates, derived from its HCL and tfvars."""

    env: str
    name: str
    account: str
    region: str
    roles: frozenset[str]
    workload_namespaces: dict[str, str]
    buckets: frozenset[str]
    repositories: frozenset[str]
    db_identifier: str
    db_secret: str
    secrets_prefix: str
    argocd_chart_version: str


@cache
def created(env: str) -> Created:
    """Evaluate the name templates of the modules for one environment."""
    tfvars = load_hcl(INFRA / "envs" / env / "terraform.tfvars")
    root = load_config(INFRA / "envs" / env)
    assert root.locals["name"] == "${var.name_prefix}"
    name = tfvars["name_prefix"]
    assert root.modules["identity"]["name_prefix"] == "${local.name}"
    assert root.modules["storage"]["name_prefix"] == "${local.name}"
    assert root.modules["database"]["name"] == "${local.name}"

    identity = load_config(INFRA / "modules" / "identity")
    prefix = _subst(identity.locals["prefix"], {"var.name_prefix": name})
    workloads = {k: v["namespace"] for k, v in identity.locals["workloads"].items()}
    role_template = identity.resource("aws_iam_role", "workload")["name"]
    roles = {_subst(role_template, {"local.prefix": prefix, "each.key": k}) for k in workloads}
    roles.add(
        _subst(
            identity.resource("aws_iam_role", "github_actions")["name"], {"local.prefix": prefix}
        )
    )
    external = identity.policy_document("external_secrets")["statement"][0]["resources"][0]
    secrets_prefix = external.split(":secret:", 1)[1].replace("${local.prefix}", prefix).rstrip("*")

    storage = load_config(INFRA / "modules" / "storage")
    purposes = storage.locals["purposes"]
    bucket_template = re.search(r'=> "([^"]+)"', storage.locals["buckets"]).group(1)  # type: ignore[union-attr]
    buckets = {_subst(bucket_template, {"var.name_prefix": name, "p": p}) for p in purposes}

    shared = load_config(INFRA / "envs" / "shared")
    repositories = set(shared.variables["ecr_repositories"]["default"])

    database = load_config(INFRA / "modules" / "database")
    identifier = _subst(database.locals["identifier"], {"var.name": name})
    db_secret = _subst(
        database.resource("aws_secretsmanager_secret", "db")["name"], {"var.name": name}
    )

    return Created(
        env=env,
        name=name,
        account=tfvars["account_id"],
        region=tfvars["region"],
        roles=frozenset(roles),
        workload_namespaces=workloads,
        buckets=frozenset(buckets),
        repositories=frozenset(repositories),
        db_identifier=identifier,
        db_secret=db_secret,
        secrets_prefix=secrets_prefix,
        argocd_chart_version=tfvars["argocd_chart_version"],
    )


def manifest_files() -> list[Path]:
    """Every YAML file under platform/ and clusters/."""
    return sorted(p for d in MANIFEST_DIRS if d.is_dir() for p in d.rglob("*.yaml"))


def path_env(path: Path) -> str | None:
    """The environment a file belongs to by its path (overlays/<env>, values-<env>.yaml, ...)."""
    rel = path.relative_to(REPO)
    for env in ENVIRONMENTS:
        if env in rel.parts or rel.name == f"values-{env}.yaml":
            return env
    return None


def _where(path: Path) -> str:
    return str(path.relative_to(REPO))


def _found(pattern: re.Pattern[str]) -> list[tuple[Path, re.Match[str]]]:
    return [
        (path, match)
        for path in manifest_files()
        for match in pattern.finditer(path.read_text(encoding="utf-8"))
    ]


def test_role_arns_in_manifests_exist_in_their_environment() -> None:
    """Each role ARN names a role its environment's root creates, in that root's account."""
    problems = []
    for path, match in _found(ROLE_ARN):
        account, env, suffix = match.groups()
        if env == "ENV":  # a base manifest's placeholder, replaced per overlay
            if suffix not in created("dev").workload_namespaces:
                problems.append(f"{_where(path)}: {match.group(0)} names no workload")
            continue
        made = created(env)
        if f"churn-{env}-{suffix}" not in made.roles:
            problems.append(
                f"{_where(path)}: role churn-{env}-{suffix} is not created by envs/{env}"
            )
        if account != made.account:
            problems.append(f"{_where(path)}: account {account} is not envs/{env}'s {made.account}")
        if path_env(path) not in (None, env):
            problems.append(f"{_where(path)}: a {path_env(path)} file names a {env} role")
    assert problems == []


def _annotations_read() -> set[str]:
    """Cluster-Secret annotation keys the manifests template in (`.metadata.annotations.x`
    or `index .metadata.annotations "x"`)."""
    pattern = re.compile(
        r"\.metadata\.annotations(?:\.([a-z0-9_]+)|\s*\"([a-z0-9_]+)\")"
        r"|index\s+\.metadata\.annotations\s+\"([a-z0-9_]+)\""
    )
    return {
        next(g for g in m.groups() if g)
        for path in manifest_files()
        for m in pattern.finditer(path.read_text(encoding="utf-8"))
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_workload_role_is_used_by_the_manifests(env: str) -> None:
    """Each IRSA role envs/<env> creates reaches a service account of that environment: as a
    literal ARN, or through its `<serviceaccount>_iam_role_arn` cluster-Secret annotation."""
    used = {f"churn-{m.group(2)}-{m.group(3)}" for _, m in _found(ROLE_ARN)}
    read = _annotations_read()
    made = created(env)
    unused = sorted(
        f"{made.name}-{sa}"
        for sa in made.workload_namespaces
        if f"{made.name}-{sa}" not in used and f"{sa.replace('-', '_')}_iam_role_arn" not in read
    )
    assert unused == [], f"roles no manifest annotates: {unused}"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict)]


def _kustomize_namespace(directory: Path) -> str | None:
    """The `namespace:` a kustomization sets on everything it lists."""
    kustomization = directory / "kustomization.yaml"
    if not kustomization.is_file():
        return None
    namespace = yaml.safe_load(kustomization.read_text(encoding="utf-8")).get("namespace")
    return str(namespace) if namespace else None


def test_role_trusts_the_namespace_its_service_account_lives_in() -> None:
    """A ServiceAccount or chart values naming a role deploy into the namespace it trusts."""
    namespaces = created("dev").workload_namespaces
    problems = []
    checked = 0
    for path, match in _found(ROLE_ARN):
        suffix = match.group(3)
        if suffix not in namespaces:
            continue
        wanted = namespaces[suffix]
        for doc in _documents(path):
            if doc.get("kind") == "ServiceAccount":
                meta = doc.get("metadata", {})
                namespace = meta.get("namespace") or _kustomize_namespace(path.parent)
                checked += 1
                if (namespace, meta.get("name")) != (wanted, suffix):
                    problems.append(
                        f"{_where(path)}: ServiceAccount {namespace}/{meta.get('name')}"
                        f" carries the role of {wanted}/{suffix}"
                    )
        appset = path.parent / "applicationset.yaml"
        if path.name.startswith("values") and appset.is_file():
            for doc in _documents(appset):
                if doc.get("kind") != "ApplicationSet":
                    continue
                checked += 1
                namespace = doc["spec"]["template"]["spec"]["destination"]["namespace"]
                if namespace != wanted:
                    problems.append(
                        f"{_where(path)}: the chart deploys to {namespace},"
                        f" the role trusts {wanted}/{suffix}"
                    )
    # The ServiceAccounts an ApplicationSet annotates from the cluster Secret's
    # `<serviceaccount>_iam_role_arn`, as Argo CD renders them for dev.
    facts = argocd_tree.cluster_params("dev")["metadata"]["annotations"]
    by_role = {
        facts[key]: suffix
        for suffix in namespaces
        if (key := f"{suffix.replace('-', '_')}_iam_role_arn") in facts
    }
    for app in argocd_tree.generated_apps("dev"):
        for source in app.sources:
            for doc in argocd_tree.render_source(source):
                meta = doc.get("metadata") or {}
                role = (meta.get("annotations") or {}).get("eks.amazonaws.com/role-arn")
                if doc.get("kind") != "ServiceAccount" or role not in by_role:
                    continue
                checked += 1
                suffix = by_role[role]
                namespace = meta.get("namespace") or app.spec["destination"].get("namespace")
                if (namespace, meta.get("name")) != (namespaces[suffix], suffix):
                    problems.append(
                        f"{app.name}: ServiceAccount {namespace}/{meta.get('name')}"
                        f" carries the role of {namespaces[suffix]}/{suffix}"
                    )
    assert checked > 0, "found no ServiceAccount or chart values carrying a role"
    assert problems == []


def test_bucket_names_in_manifests_exist() -> None:
    """s3:// URIs and `bucket:` values name buckets their environment's root creates."""
    problems = []
    found = _found(BUCKET)
    assert found or {"models_bucket", "data_bucket"} & _annotations_read(), (
        "no bucket referenced in the manifests, neither by name nor by annotation"
    )
    for path, match in found:
        bucket, env = match.groups()
        if env == "ENV":
            purposes = {b.removeprefix("churn-dev-") for b in created("dev").buckets}
            if bucket.removeprefix("churn-ENV-") not in purposes:
                problems.append(f"{_where(path)}: {bucket} names no bucket purpose")
            continue
        if bucket not in created(env).buckets:
            problems.append(f"{_where(path)}: bucket {bucket} is not created by envs/{env}")
        if path_env(path) not in (None, env):
            problems.append(
                f"{_where(path)}: a {path_env(path)} file names the {env} bucket {bucket}"
            )
    assert problems == []


def test_images_come_from_the_registry_the_roots_create() -> None:
    """Image references use the account, region and repositories of the shared ECR."""
    problems = []
    shared = load_hcl(INFRA / "envs" / "shared" / "account.auto.tfvars")
    made = created("dev")
    for path, match in _found(REGISTRY):
        account, region, repository = match.groups()
        if (account, region) != (shared["account_id"], shared["region"]):
            problems.append(
                f"{_where(path)}: registry {account}/{region} is not envs/shared's"
                f" {shared['account_id']}/{shared['region']}"
            )
        if repository not in made.repositories:
            problems.append(f"{_where(path)}: repository {repository} is not created")
    assert problems == []


def test_regions_and_cluster_names_match() -> None:
    """`region:` values equal the roots' region; `clusterName:` is churn-<env> of its folder."""
    problems = []
    regions = {created(e).region for e in ENVIRONMENTS}
    for path in manifest_files():
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"^\s*region:\s*[\"']?([a-z0-9-]+)", text, re.M):
            env = path_env(path)
            allowed = {created(env).region} if env else regions
            if match.group(1) not in allowed:
                problems.append(f"{_where(path)}: region {match.group(1)} not in {sorted(allowed)}")
        for match in re.finditer(r"^\s*clusterName:\s*[\"']?([a-z0-9-]+)", text, re.M):
            env = path_env(path)
            if env and match.group(1) != created(env).name:
                problems.append(
                    f"{_where(path)}: clusterName {match.group(1)} is not {created(env).name}"
                )
    assert problems == []


def test_secrets_manager_keys_are_readable_and_exist() -> None:
    """Secrets Manager keys in manifests sit under the prefix External Secrets may read;
    the MLflow database key is the secret the database module writes."""
    problems = []
    for path, match in _found(SECRET_KEY):
        key, env = match.groups()
        if env == "ENV":
            continue
        made = created(env)
        if not key.startswith(made.secrets_prefix):
            problems.append(f"{_where(path)}: {key} is outside {made.secrets_prefix}*")
        if "/mlflow/" in key and key != made.db_secret:
            problems.append(f"{_where(path)}: {key} is not the database secret {made.db_secret}")
    assert problems == []


def test_mlflow_database_host_is_the_instance_the_root_creates() -> None:
    """MLflow's `host:` values start with the RDS identifier churn-<env>-mlflow."""
    problems = []
    checked = 0
    for path in manifest_files():
        env = path_env(path)
        if "mlflow" not in path.parts or env is None:
            continue
        for match in re.finditer(
            r"^\s*host:\s*[\"']?([a-z0-9.-]+)", path.read_text(encoding="utf-8"), re.M
        ):
            checked += 1
            if not match.group(1).startswith(created(env).db_identifier + "."):
                problems.append(
                    f"{_where(path)}: host {match.group(1)} is not {created(env).db_identifier}.*"
                )
    assert problems == []


def test_argocd_chart_version_matches_the_self_managing_application() -> None:
    """The chart OpenTofu installs once is the chart platform/argocd/argocd.yaml keeps syncing."""
    path = REPO / "platform" / "argocd" / "argocd.yaml"
    sources = [
        s
        for doc in _documents(path)
        for s in doc.get("spec", {}).get("sources", [doc.get("spec", {}).get("source", {})])
        if s.get("chart") == "argo-cd"
    ]
    assert len(sources) == 1, "argocd.yaml must have one argo-cd chart source"
    for env in ENVIRONMENTS:
        assert created(env).argocd_chart_version == sources[0]["targetRevision"], env


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_root_application_and_its_project_exist(env: str) -> None:
    """clusters/<env>/root.yaml and the AppProject it names exist where the root reads them."""
    root = load_config(INFRA / "envs" / env)
    bridge = root.modules["gitops_bridge"]
    values = REPO / "platform" / "argocd" / "values.yaml"
    application = REPO / "clusters" / env / "root.yaml"
    assert bridge["argocd_values_file"].endswith("/platform/argocd/values.yaml")
    assert bridge["root_application_file"].endswith("/clusters/${var.environment}/root.yaml")
    for path in (values, application):
        assert path.is_file(), f"{_where(path)} is missing: tofu apply reads it"
    (app,) = [d for d in _documents(application) if d.get("kind") == "Application"]
    assert app["spec"]["source"]["path"] == f"clusters/{env}"
    projects = [REPO / p.replace("${local.repo_root}/", "") for p in bridge["project_files"]]
    names = {
        d["metadata"]["name"]
        for p in projects
        for d in _documents(p)
        if d.get("kind") == "AppProject"
    }
    assert app["spec"]["project"] in names


def test_workload_namespaces_are_contract_namespaces() -> None:
    """The namespaces the roles trust are among those docs/contracts.md lists."""
    contract = (REPO / "docs" / "contracts.md").read_text(encoding="utf-8")
    row = next(line for line in contract.splitlines() if line.startswith("| namespaces |"))
    listed = set(re.findall(r"`([a-z0-9-]+)`", row))
    assert set(created("dev").workload_namespaces.values()) <= listed
    accounts = next(
        line for line in contract.splitlines() if "ServiceAccounts with an AWS role" in line
    )
    pairs = set(re.findall(r"`([a-z0-9-]+/[a-z0-9-]+)`", accounts))
    mine = {f"{ns}/{sa}" for sa, ns in created("dev").workload_namespaces.items()}
    assert mine == pairs


def test_model_pins_sit_where_churn_api_may_read() -> None:
    """Each pin's MODEL_URI is in its environment's models bucket, under the prefix the
    churn-api role may read."""
    identity = load_config(INFRA / "modules" / "identity")
    prefix = identity.variables["models_prefix"]["default"]
    pins = sorted((REPO / "platform" / "apps" / "churn-api" / "overlays").glob("*/model.yaml"))
    assert pins, "no model pins under platform/apps/churn-api/overlays"
    problems = []
    for pin in pins:
        env = pin.parent.name
        uris = re.findall(r"s3://[^\s\"']+", pin.read_text(encoding="utf-8"))
        assert uris, f"{_where(pin)} has no s3:// MODEL_URI"
        for uri in uris:
            wanted = f"s3://{created(env).name}-models/{prefix}"
            if not uri.startswith(wanted):
                problems.append(f"{_where(pin)}: {uri} is outside {wanted}")
    assert problems == []
