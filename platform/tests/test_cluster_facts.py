"""Facts from the cluster Secret: every AWS fact the apps need comes from its annotations.

OpenTofu writes the facts of each cluster (account, region, VPC, roles, buckets, database,
repository) as annotations on the Argo CD cluster Secret; the ApplicationSets read them through
the cluster generator's Go template. So a new account is a new terraform.tfvars, never a
search-and-replace here. Checked:

- the keys the templates read are the keys of the hand-off table in docs/contracts.md, and
  every key of the table is read (a few have no consumer yet, listed with the reason);
- no account id, ARN or AWS host is written under platform/ or clusters/;
- the rendered Applications carry the fixture Secret's values where they matter.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# --import-mode=importlib leaves this folder off sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from argocd_tree import (
    ROOT,
    GeneratedApp,
    cluster_params,
    generated_apps,
    kustomize,
    render_source,
    template_keys,
)

ENVIRONMENTS = ("dev", "staging", "prod")
CONTRACT_SECTION = "## The hand-off from OpenTofu to Argo CD"
PREFIX = "metadata.annotations."
# Keys OpenTofu writes that nothing in platform/ reads yet, and why.
NOT_READ_YET = {
    "data_bucket": "the pipeline derives its data bucket from the environment name",
}
# Files under platform/ that another flow writes: the release pull requests set the image
# (registry and digest) of churn-api, and its role annotation is overridden by the
# ApplicationSet's patch (test_the_rendered_apps_carry_the_clusters_facts); `make render`
# writes the workflows image into the create-databases hook, as into workflows/manifests.
FOREIGN = (
    "platform/apps/churn-api/base/",
    "platform/apps/churn-api/overlays/",
    "platform/apps/argo-workflows/manifests/databases/",
)
ACCOUNT = re.compile(r"(?<![0-9a-f])\d{12}(?![0-9a-f])")
ARN = re.compile(r"\barn:aws[a-z-]*:")
# A concrete AWS host (`s3.eu-west-1.amazonaws.com`, `<id>.rds.amazonaws.com`), not one built
# from a template (`s3.{{...}}.amazonaws.com`) and not the IRSA annotation key.
HOST = re.compile(r"(?<![}\w.-])(?:[a-z0-9-]+\.)+amazonaws\.com(?!/role-arn)")


def contract_keys() -> set[str]:
    """The keys of the hand-off table in docs/contracts.md; the fixture's until it has one."""
    text = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    section = text.split(CONTRACT_SECTION, 1)[-1].split("\n## ", 1)[0]
    keys = {
        m.group(1)
        for line in section.splitlines()
        if line.startswith("|")
        for m in [re.match(r"\|\s*`([a-z0-9_<>]+)`", line)]
        if m
    }
    return keys or set(cluster_params("dev")["metadata"]["annotations"])


def expand(keys: set[str], written: set[str]) -> set[str]:
    """Table rows such as `<serviceaccount>_iam_role_arn` stand for the keys written."""
    out = set()
    for key in keys:
        if "<" in key:
            pattern = re.compile("^" + re.sub(r"<[^>]+>", "[a-z0-9_]+", key) + "$")
            out |= {w for w in written if pattern.match(w)}
        else:
            out.add(key)
    return out


def templates() -> list[tuple[str, Any]]:
    """(name, template) of every ApplicationSet the clusters hold."""
    found = {}
    for env in ENVIRONMENTS:
        for document in kustomize(ROOT / "clusters" / env):
            if document["kind"] == "ApplicationSet":
                found[document["metadata"]["name"]] = document["spec"]["template"]
    return sorted(found.items())


def keys_read() -> dict[str, set[str]]:
    read: dict[str, set[str]] = {}
    for name, template in templates():
        for key in template_keys(template):
            if key.startswith(PREFIX):
                read.setdefault(key.removeprefix(PREFIX), set()).add(name)
    return read


def test_the_fixtures_hold_the_contract_keys() -> None:
    for env in ENVIRONMENTS:
        written = set(cluster_params(env)["metadata"]["annotations"])
        assert expand(contract_keys(), written) == written, env


def test_every_key_read_is_in_the_contract_and_every_key_is_read() -> None:
    written = set(cluster_params("dev")["metadata"]["annotations"])
    table = expand(contract_keys(), written)
    read = keys_read()
    assert set(read) <= table, f"read but not in the contract: {sorted(set(read) - table)}"
    unread = table - set(read)
    assert unread == set(NOT_READ_YET), (
        f"keys nothing reads: {sorted(unread - set(NOT_READ_YET))}; "
        f"read now, drop from NOT_READ_YET: {sorted(set(NOT_READ_YET) - unread)}"
    )


def literal_problems(root: Path) -> list[str]:
    problems = []
    for top in ("platform", "clusters"):
        for path in sorted((root / top).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if not path.is_file() or path.suffix not in {".yaml", ".yml", ".json"}:
                continue
            if rel.startswith(("platform/tests/", *FOREIGN)):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for name, pattern in (("account id", ACCOUNT), ("ARN", ARN), ("AWS host", HOST)):
                    if pattern.search(line):
                        problems.append(f"{rel}:{number}: {name} literal: {line.strip()}")
    return problems


def test_no_account_arn_or_aws_host_is_written_in_platform_or_clusters() -> None:
    problems = literal_problems(ROOT)
    assert not problems, "\n".join(problems)


def test_the_literal_check_catches_a_hard_coded_fact(tmp_path: Path) -> None:
    values = tmp_path / "platform" / "apps" / "x" / "values.yaml"
    values.parent.mkdir(parents=True)
    values.write_text(
        "a: arn:aws:iam::111122223333:role/x\n"
        "b: churn-dev-mlflow.c0abc.eu-west-1.rds.amazonaws.com\n"
        "c: '{{.metadata.annotations.aws_region}}'\n"
        "d: s3.{{.metadata.annotations.aws_region}}.amazonaws.com\n",
        encoding="utf-8",
    )
    problems = literal_problems(tmp_path)
    assert len(problems) == 3, problems  # ARN (with its account id) and the RDS host
    assert any("values.yaml:2: AWS host" in p for p in problems)


def one_app(env: str, prefix: str) -> GeneratedApp:
    (app,) = [a for a in generated_apps(env) if a.name == f"{prefix}-{env}"]
    return app


def rendered(app: GeneratedApp) -> list[dict[str, Any]]:
    return [d for s in app.sources for d in render_source(s)]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def values_object(app: GeneratedApp) -> dict[str, Any]:
    (source,) = [s for s in app.sources if s.chart]
    result: dict[str, Any] = (source.spec.get("helm") or {}).get("valuesObject") or {}
    return result


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_rendered_apps_carry_the_clusters_facts(env: str) -> None:
    facts = cluster_params(env)["metadata"]["annotations"]
    role = "eks.amazonaws.com/role-arn"

    api = rendered(one_app(env, "churn-api"))
    assert (
        find(api, "ServiceAccount", "churn-api")["metadata"]["annotations"][role]
        == (facts["churn_api_iam_role_arn"])
    )
    policy = find(api, "NetworkPolicy", "churn-api")
    cidrs = [
        peer["ipBlock"]["cidr"]
        for rule in policy["spec"].get("ingress", [])
        for peer in rule.get("from", [])
        if "ipBlock" in peer
    ]
    assert cidrs == [facts["aws_vpc_cidr"]], f"{env}: churn-api admits {cidrs}"
    for ingress in (d for d in api if d["kind"] == "Ingress"):
        annotations = ingress["metadata"]["annotations"]
        assert (
            annotations["alb.ingress.kubernetes.io/certificate-arn"]
            == (facts["ingress_certificate_arn"])
        )

    training = rendered(one_app(env, "argo-workflows"))
    assert (
        find(training, "ServiceAccount", "churn-workflows")["metadata"]["annotations"][role]
        == (facts["churn_workflows_iam_role_arn"])
    )
    repository = yaml.safe_load(
        find(training, "ConfigMap", "artifact-repositories")["data"]["churn-s3"]
    )
    assert repository["s3"]["bucket"] == facts["argo_artifacts_bucket"]
    assert repository["s3"]["region"] == facts["aws_region"]
    assert repository["s3"]["keyFormat"] == "{{workflow.name}}/{{pod.name}}"
    github = find(training, "ExternalSecret", "churn-workflows-github")
    assert github["spec"]["dataFrom"][0]["extract"]["key"].startswith(facts["name_prefix"] + "/")

    lbc = values_object(one_app(env, "aws-load-balancer-controller"))
    assert lbc["vpcId"] == facts["aws_vpc_id"]
    assert lbc["clusterName"] == facts["aws_cluster_name"]

    mlflow_app = one_app(env, "mlflow")
    mlflow = values_object(mlflow_app)
    assert mlflow["backendStore"]["postgres"]["host"] == facts["mlflow_db_host"]
    assert mlflow["artifactRoot"]["s3"]["bucket"] == facts["mlflow_artifacts_bucket"]
    secret = find(rendered(mlflow_app), "ExternalSecret", "mlflow-postgres")
    assert {d["remoteRef"]["key"] for d in secret["spec"]["data"]} == {
        facts["mlflow_db_secret_name"]
    }

    for app in generated_apps(env):
        for source in app.sources:
            if not source.chart and source.spec["repoURL"].startswith("https://github.com"):
                assert source.spec["repoURL"] == facts["gitops_repo_url"], app.name


def helm_values(app: GeneratedApp, env: str) -> dict[str, Any]:
    """The chart's values as Helm merges them for ``env``: the value files in order (the ones
    in this repository), then valuesObject; maps merge, anything else is replaced."""

    def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
        merged = dict(base)
        for key, value in top.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
        return merged

    (source,) = [s for s in app.sources if s.chart]
    result: dict[str, Any] = {}
    for name in source.spec["helm"]["valueFiles"]:
        path = ROOT / name.removeprefix("$values/")
        if path.is_file():
            result = merge(result, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return merge(result, values_object(app))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_rollouts_controller_verifies_prods_target_groups_with_its_own_role(env: str) -> None:
    facts = cluster_params(env)["metadata"]["annotations"]
    values = helm_values(one_app(env, "argo-rollouts"), env)
    assert (
        values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
        == (facts["argo_rollouts_iam_role_arn"])
    )
    # The chart names the service account after the release; OpenTofu's role trusts that name.
    assert values["serviceAccount"].get("name", "") in ("", "argo-rollouts")
    assert {"name": "AWS_REGION", "value": facts["aws_region"]} in values["controller"]["extraEnv"]
    flags = values["controller"]["extraArgs"]
    # Helm replaces lists: the environment's file must keep the flags every cluster needs.
    assert "--self-service-notification-enabled" in flags
    assert ("--aws-verify-target-group" in flags) == (env == "prod"), flags
