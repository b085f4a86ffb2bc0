"""What a first `tofu apply` of an environment needs to come up working, read from the HCL.

Nothing here can run OpenTofu against AWS, so each fact a real apply depends on is checked
on the code instead:
1. the node group can launch (its volume key lets EC2 Auto Scaling use it);
2. the ALB can come up (certificate, VPC id and region reach the cluster; prod's web ACL);
3. Prometheus' volume binds (EBS CSI with its role, a default gp3 StorageClass);
4. NetworkPolicies are enforced and the VPC's CIDR reaches the cluster;
5. pods and nodes scale (metrics-server, Cluster Autoscaler with its scoped role);
6. the cluster Secret carries exactly the annotation keys of docs/contracts.md;
7. the operable parts: admins, RDS versions, account-wide resources, names, GitHub roles.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from tofu_hcl import ENVIRONMENTS, INFRA, REPO, load_config, load_hcl, load_hcl_text, one

STACK = INFRA / "stack"
EKS = INFRA / "modules" / "eks"
CONTRACTS = REPO / "docs" / "contracts.md"
AUTOSCALING_ROLE = "AWSServiceRoleForAutoScaling"
# What EC2 Auto Scaling needs on a customer managed key to launch encrypted volumes.
EBS_KEY_ACTIONS = {
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
}


def _reference(expression: str, kind: str) -> str | None:
    """The name in `${<kind>.<name>...}`, or None."""
    match = re.fullmatch(r"\$\{" + re.escape(kind) + r"\.([a-z0-9_]+)(?:\.[a-z_]+)?\}", expression)
    return match.group(1) if match else None


def _resolve(value: str, locals_: dict[str, Any]) -> str:
    """Replace `${local.x}` (or a bare `local.x`) by the local's text."""
    return re.sub(
        r"^\$\{local\.([a-z0-9_]+)\}$|^local\.([a-z0-9_]+)$",
        lambda m: str(locals_.get(m.group(1) or m.group(2))),
        value,
    )


def key_policy_statements(policy: str) -> list[dict[str, Any]]:
    """The statements of a key policy written as `jsonencode({...})`, read with python-hcl2."""
    match = re.fullmatch(r"\$\{jsonencode\((.*)\)\}", policy, re.S)
    assert match, f"key policies are written as jsonencode({{...}}), not {policy[:60]!r}"
    document = load_hcl_text(f"policy = {match.group(1)}")["policy"]
    return list(document["Statement"])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _tfvars(env: str) -> dict[str, Any]:
    return load_hcl(INFRA / "envs" / env / "terraform.tfvars")


def contract_keys() -> list[str]:
    """The annotation keys of the table in docs/contracts.md, "The hand-off from OpenTofu to
    Argo CD", in order."""
    text = CONTRACTS.read_text(encoding="utf-8")
    section = text.split("## The hand-off from OpenTofu to Argo CD", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.M)


def written_keys() -> set[str]:
    """The annotation keys stack/main.tf writes on the cluster Secret."""
    stack = load_config(STACK)
    bridge = stack.modules["gitops_bridge"]
    assert bridge["cluster_annotations"] == (
        "${merge(local.cluster_facts, local.role_annotations, local.bucket_annotations)}"
    ), "cluster_annotations must merge exactly the facts, the role ARNs and the buckets"
    facts = stack.locals["cluster_facts"]
    assert isinstance(facts, dict), "local.cluster_facts must be an object literal"
    roles = stack.locals["role_annotations"]
    buckets = stack.locals["bucket_annotations"]
    assert "module.identity.workload_role_arns" in roles
    assert '_iam_role_arn" => arn' in roles
    assert "module.storage.bucket_names" in buckets
    assert '_bucket" => bucket' in buckets
    identity = load_config(INFRA / "modules" / "identity")
    storage = load_config(INFRA / "modules" / "storage")
    return (
        set(facts)
        | {f"{sa.replace('-', '_')}_iam_role_arn" for sa in identity.locals["workloads"]}
        | {f"{p.replace('-', '_')}_bucket" for p in storage.locals["purposes"]}
    )


# ----------------------------------------------------------------------------- 1. node group


def test_every_launch_template_key_lets_autoscaling_launch_volumes() -> None:
    """A customer managed key on a launch template's volumes grants the Auto Scaling
    service-linked role what EBS needs (use, and grants for AWS resources); otherwise the
    managed node group ends CREATE_FAILED after about 20 minutes."""
    eks = load_config(EKS)
    checked = 0
    for name, template in eks.resources["aws_launch_template"].items():
        for mapping in template.get("block_device_mappings", []):
            ebs = one(mapping.get("ebs"))
            key = _reference(str(ebs.get("kms_key_id", "")), "aws_kms_key")
            if ebs.get("kms_key_id") is None:
                continue
            assert key, f"launch template {name}: kms_key_id must be a key of this module"
            checked += 1
            statements = key_policy_statements(str(eks.resource("aws_kms_key", key)["policy"]))
            granted: set[str] = set()
            grants = False
            for statement in statements:
                principals = [
                    _resolve(str(p), eks.locals)
                    for p in _as_list(dict(statement.get("Principal", {})).get("AWS", []))
                ]
                if statement.get("Effect") != "Allow" or not any(
                    p.endswith(f"autoscaling.amazonaws.com/{AUTOSCALING_ROLE}") for p in principals
                ):
                    continue
                actions = set(_as_list(statement.get("Action", [])))
                granted |= actions
                condition = dict(statement.get("Condition", {}))
                if "kms:CreateGrant" in actions and (
                    dict(condition.get("Bool", {})).get("kms:GrantIsForAWSResource") == "true"
                ):
                    grants = True
            missing = EBS_KEY_ACTIONS - granted
            assert not missing, f"aws_kms_key.{key}: {AUTOSCALING_ROLE} lacks {sorted(missing)}"
            assert grants, (
                f"aws_kms_key.{key}: {AUTOSCALING_ROLE} needs kms:CreateGrant"
                " with kms:GrantIsForAWSResource = true"
            )
    assert checked, "no launch template volume names a key"


def test_the_autoscaling_service_linked_role_exists_before_any_key_names_it() -> None:
    """A key policy naming a role that does not exist is refused: envs/shared creates it."""
    shared = load_config(INFRA / "envs" / "shared")
    role = shared.resource("aws_iam_service_linked_role", "autoscaling")
    assert role["aws_service_name"] == "autoscaling.amazonaws.com"


# ----------------------------------------------------------------------------- 2. ingress


def test_the_load_balancer_controller_and_the_listener_get_their_facts() -> None:
    """The controller cannot read the VPC id from IMDS (one hop) and needs the region; the
    HTTPS listener needs a certificate. All three are annotations of the cluster Secret."""
    facts = load_config(STACK).locals["cluster_facts"]
    assert facts.get("aws_vpc_id") == "${module.network.vpc_id}"
    assert facts.get("aws_region") == "${var.region}"
    assert facts.get("ingress_certificate_arn") == "${module.ingress.certificate_arn}"
    ingress = load_config(INFRA / "modules" / "ingress")
    certificate = ingress.resource("aws_acm_certificate", "this")
    assert certificate["validation_method"] == "DNS"
    assert "aws_acm_certificate_validation.this" in ingress.outputs["certificate_arn"]["value"], (
        "hand on the certificate once it is validated, or the listener refuses it"
    )


def test_prod_has_a_certificate_and_a_rate_limit() -> None:
    """prod's ALB listens on HTTPS: its tfvars give a certificate and WAF's rate limit."""
    prod = _tfvars("prod")
    creates = prod.get("ingress_domain_name") and prod.get("ingress_route53_zone_id")
    assert creates or prod.get("ingress_certificate_arn"), "prod needs a listener certificate"
    assert isinstance(prod.get("waf_rate_limit"), int)
    assert prod["waf_rate_limit"] >= 100


def test_the_web_acl_blocks_a_client_over_its_rate() -> None:
    """The web ACL's first rule blocks a client address over waf_rate_limit in five minutes;
    its ARN reaches the Ingress as an annotation."""
    acl = load_config(INFRA / "modules" / "ingress").resource("aws_wafv2_web_acl", "this")
    assert acl["scope"] == "REGIONAL"
    rules = {r["name"]: r for r in acl["rule"]}
    rate = rules["rate-limit-per-client"]
    statement = one(one(rate["statement"])["rate_based_statement"])
    assert statement["limit"] == "${var.waf_rate_limit}"
    assert statement["aggregate_key_type"] == "IP"
    assert "block" in one(rate["action"])
    facts = load_config(STACK).locals["cluster_facts"]
    assert facts.get("ingress_waf_acl_arn") == "${module.ingress.web_acl_arn}"


# ----------------------------------------------------------------------------- 3. storage


def test_a_default_encrypted_gp3_storage_class_exists_before_argo_cd() -> None:
    """EKS 1.30+ marks no StorageClass default: the root makes gp3 the default, provisioned
    by the EBS CSI add-on (with its IRSA role), before Argo CD installs anything."""
    stack = load_config(STACK)
    classes = stack.resources.get("kubernetes_storage_class_v1", {})
    defaults = [
        (name, body)
        for name, body in classes.items()
        if one(body["metadata"])
        .get("annotations", {})
        .get("storageclass.kubernetes.io/is-default-class")
        == "true"
    ]
    assert len(defaults) == 1, "exactly one default StorageClass"
    name, body = defaults[0]
    assert body["storage_provisioner"] == "ebs.csi.aws.com"
    assert body["parameters"] == {"type": "gp3", "encrypted": "true"}
    assert body["volume_binding_mode"] == "WaitForFirstConsumer"
    assert f"${{kubernetes_storage_class_v1.{name}}}" in stack.modules["gitops_bridge"].get(
        "depends_on", []
    )
    eks = load_config(EKS)
    addon = eks.resource("aws_eks_addon", "after_nodes")
    assert '"aws-ebs-csi-driver"' in addon["for_each"]
    assert "aws_iam_role.ebs_csi.arn" in addon["service_account_role_arn"]


# ----------------------------------------------------------------------------- 4. network policy


def test_vpc_cni_enforces_network_policies() -> None:
    """Without enableNetworkPolicy the VPC CNI ignores every NetworkPolicy."""
    eks = load_config(EKS)
    addons = eks.resources["aws_eks_addon"]
    owner = next(n for n, a in addons.items() if '"vpc-cni"' in str(a.get("for_each", "")))
    configuration = str(addons[owner].get("configuration_values", ""))
    if "local.addon_configuration" in configuration:
        configuration = str(eks.locals["addon_configuration"].get("vpc-cni", ""))
    assert re.search(r'enableNetworkPolicy\s*=\s*"true"', configuration), (
        'the vpc-cni add-on must set enableNetworkPolicy = "true"'
    )


def test_the_vpc_cidr_reaches_the_cluster() -> None:
    """NetworkPolicies admit the VPC's own CIDR, read from the cluster Secret."""
    facts = load_config(STACK).locals["cluster_facts"]
    assert facts.get("aws_vpc_cidr") == "${module.network.vpc_cidr_block}"
    cidrs = {_tfvars(e)["vpc_cidr"] for e in ENVIRONMENTS}
    assert len(cidrs) == len(ENVIRONMENTS), "each environment's VPC has its own CIDR"


# ----------------------------------------------------------------------------- 5. autoscaling


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_cluster_installs_metrics_server_and_the_node_autoscaler(env: str) -> None:
    """The HPA needs metrics.k8s.io; nodes scale between node_scaling's bounds."""
    listed = yaml.safe_load(
        (REPO / "clusters" / env / "kustomization.yaml").read_text(encoding="utf-8")
    )["resources"]
    for app in ("metrics-server", "cluster-autoscaler"):
        assert f"../../platform/apps/{app}" in listed, f"clusters/{env} must install {app}"
        assert (REPO / "platform" / "apps" / app / "applicationset.yaml").is_file()
    scaling = _tfvars(env)["node_scaling"]
    assert scaling["max_size"] > scaling["min_size"], f"{env}: nothing to scale between"


def test_the_autoscaler_role_changes_only_this_clusters_groups() -> None:
    """The Cluster Autoscaler's IRSA role trusts kube-system/cluster-autoscaler (the chart's
    service account) and may resize only groups tagged as this cluster's."""
    identity = load_config(INFRA / "modules" / "identity")
    assert identity.locals["workloads"]["cluster-autoscaler"]["namespace"] == "kube-system"
    values = yaml.safe_load(
        (REPO / "platform" / "apps" / "cluster-autoscaler" / "values.yaml").read_text(
            encoding="utf-8"
        )
    )
    assert values["rbac"]["serviceAccount"]["name"] == "cluster-autoscaler"
    assert values["cloudProvider"] == "aws"
    document = identity.policy_document("cluster_autoscaler")
    writes = [
        s
        for s in document["statement"]
        if {"autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"}
        & set(s["actions"])
    ]
    assert writes
    for statement in writes:
        variables = {c["variable"]: c["values"] for c in statement.get("condition", [])}
        tag = "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.cluster_name}"
        assert variables.get(tag) == ["owned"], "writes must be limited to this cluster's groups"


def test_the_rollouts_controller_may_only_describe_load_balancers() -> None:
    """Target group verification (--aws-verify-target-group): the controller's service account
    assumes a role that may call the ELB Describe actions the Rollouts ALB guide lists, no more."""
    identity = load_config(INFRA / "modules" / "identity")
    assert identity.locals["workloads"]["argo-rollouts"]["namespace"] == "argo-rollouts"
    document = identity.policy_document("argo_rollouts")
    actions = {a for s in document["statement"] for a in s["actions"]}
    assert actions == {
        f"elasticloadbalancing:Describe{what}"
        for what in ("Listeners", "LoadBalancers", "Rules", "Tags", "TargetGroups", "TargetHealth")
    }
    values = yaml.safe_load(
        (REPO / "platform" / "apps" / "argo-rollouts" / "values.yaml").read_text(encoding="utf-8")
    )
    assert values.get("serviceAccount", {}).get("name", "argo-rollouts") == "argo-rollouts"


# A Secrets Manager key as an ExternalSecret's remoteRef (or a patch of it) names it.
SECRET_KEY = re.compile(
    r"(?:key|value):\s*[\"']?(churn-(ENV|dev|staging|prod|platform)/[A-Za-z0-9/_+=.@-]+)"
)
# ... or as an ApplicationSet patch builds it from the cluster Secret's name_prefix.
TEMPLATED_SECRET_KEY = re.compile(
    r"(?:key|value):\s*[\"']?\{\{\s*\.metadata\.annotations\.name_prefix\s*\}\}/([A-Za-z0-9/_+=.@-]+)"
)


def test_every_secret_the_manifests_read_exists_and_external_secrets_may_read_it() -> None:
    """Each Secrets Manager key in platform/, monitoring/ and clusters/ is created by a root
    (values set by hand where OpenTofu has none), or External Secrets fails and its app with it."""
    stack = load_config(STACK)
    database = load_config(INFRA / "modules" / "database")
    per_environment = {
        str(database.resource("aws_secretsmanager_secret", name)["name"]).replace(
            "${var.name}/", ""
        )
        for name in ("db", "predictions")
    } | set(stack.variables["out_of_band_secrets"]["default"])
    assert stack.resource("aws_secretsmanager_secret", "out_of_band")["name"] == (
        "${local.name}/${each.value}"
    )
    shared = load_config(INFRA / "envs" / "shared")
    platform = set(shared.variables["platform_secrets"]["default"])
    prefix = stack.variables["platform_secrets_prefix"]["default"]
    manifests = [
        path
        for folder in ("platform", "monitoring", "clusters", "policies")
        for path in (REPO / folder).rglob("*.yaml")
    ]
    found = sorted(
        {
            (path.relative_to(REPO), match.group(1), match.group(2))
            for path in manifests
            for match in SECRET_KEY.finditer(path.read_text(encoding="utf-8"))
        }
        | {
            (path.relative_to(REPO), f"churn-ENV/{match.group(1)}", "ENV")
            for path in manifests
            for match in TEMPLATED_SECRET_KEY.finditer(path.read_text(encoding="utf-8"))
        }
    )
    assert found, "no Secrets Manager key in the manifests"
    assert any(scope == "ENV" and "/sso/" in key for _, key, scope in found), "templated keys"
    missing = []
    for path, key, scope in found:
        if scope == "platform":
            if key not in platform or not key.startswith(f"{prefix}/"):
                missing.append(f"{path}: {key} is not a platform secret envs/shared creates")
        elif key.split("/", 1)[1] not in per_environment:
            missing.append(f"{path}: {key} is created by no environment root")
    assert missing == []
    policy = load_config(INFRA / "modules" / "identity").policy_document("external_secrets")
    readable = {r for st in policy["statement"] for r in st.get("resources", [])}
    assert any(r.endswith(":secret:${local.prefix}/*") for r in readable)
    assert any(r.endswith(":secret:${var.platform_secrets_prefix}/*") for r in readable)


# ----------------------------------------------------------------------------- 6. the hand-off


def test_the_annotations_written_are_the_contract_table() -> None:
    """OpenTofu writes exactly the annotation keys docs/contracts.md lists, each once."""
    table = contract_keys()
    assert len(table) == len(set(table)), "a key is listed twice"
    assert written_keys() == set(table)


def test_the_annotation_keys_agreed_with_argo_cd_are_in_the_table() -> None:
    """The keys the ApplicationSets were promised exist, spelled the same."""
    agreed = {
        "aws_account_id",
        "aws_region",
        "aws_cluster_name",
        "aws_vpc_id",
        "aws_vpc_cidr",
        "name_prefix",
        "ingress_certificate_arn",
        "gitops_repo_url",
        "gitops_repo_revision",
        "mlflow_db_host",
        "mlflow_db_secret_name",
        "predictions_db_secret_name",
        "cluster_autoscaler_iam_role_arn",
        "argo_rollouts_iam_role_arn",
        *(
            f"{sa}_iam_role_arn"
            for sa in (
                "churn_api",
                "churn_workflows",
                "mlflow",
                "argo_workflows_server",
                "aws_load_balancer_controller",
                "external_secrets",
            )
        ),
        *(f"{p}_bucket" for p in ("data", "models", "mlflow_artifacts", "argo_artifacts")),
    }
    assert agreed <= set(contract_keys())


def test_the_root_application_follows_the_annotated_repository() -> None:
    """Argo CD's first root Application syncs gitops_repo_url@gitops_repo_revision, so a fork
    needs no search-and-replace to bootstrap."""
    bridge = load_config(INFRA / "modules" / "gitops-bridge")
    values = str(bridge.resource("helm_release", "root")["values"])
    assert 'var.cluster_annotations["gitops_repo_url"]' in values
    assert 'var.cluster_annotations["gitops_repo_revision"]' in values


# ----------------------------------------------------------------------------- 7. operable


def test_admins_are_access_entries_from_a_variable() -> None:
    """No hidden creator entry: admin_principal_arns and (by default) the caller get explicit
    access entries, which can be listed and removed like any other."""
    eks = load_config(EKS)
    access = one(eks.resource("aws_eks_cluster", "this")["access_config"])
    assert access["bootstrap_cluster_creator_admin_permissions"] is False
    entries = eks.resource("aws_eks_access_entry", "admin")
    assert entries["for_each"] == "${local.admin_principal_arns}"
    assert "var.admin_principal_arns" in eks.locals["admin_principal_arns"]
    assert "issuer_arn" in eks.locals["admin_principal_arns"]
    stack = load_config(STACK)
    assert stack.modules["eks"]["admin_principal_arns"] == "${var.admin_principal_arns}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rds_pins_the_major_and_takes_minor_upgrades(env: str) -> None:
    """A pinned minor version is "downgraded" by the first plan after AWS upgrades it."""
    assert re.fullmatch(r"\d+", str(_tfvars(env)["db_engine_version"]))
    database = load_config(INFRA / "modules" / "database")
    instance = database.resource("aws_db_instance", "this")
    assert instance["auto_minor_version_upgrade"] is True
    assert instance["engine_version"] == "${var.engine_version}"


def test_account_wide_resources_live_in_their_own_root() -> None:
    """ECR and the GitHub OIDC provider are in envs/shared's state, not in dev's: destroying
    an environment never takes them along."""
    stack = load_config(STACK)
    assert "ecr" not in stack.modules
    identity = load_config(INFRA / "modules" / "identity")
    assert "aws_iam_openid_connect_provider" not in identity.resources
    shared = load_config(INFRA / "envs" / "shared")
    assert shared.modules["ecr"]["source"] == "../../modules/ecr"
    shared.resource("aws_iam_openid_connect_provider", "github")
    assert not (INFRA / "envs" / "shared" / "main.tf").is_symlink()


def test_every_name_follows_one_prefix() -> None:
    """No module fixes a name to churn-<env>: a fork sets name_prefix, its S3 names its own."""
    for path in sorted((INFRA / "modules").glob("*/*.tf")):
        text = path.read_text(encoding="utf-8")
        assert "churn-${" not in text, f"{path.relative_to(INFRA)} builds a churn-<env> name"
        assert "churn-(dev|staging|prod)" not in text, f"{path.relative_to(INFRA)} locks names"
    assert load_config(STACK).locals["name"] == "${var.name_prefix}"
    prefixes = [_tfvars(e)["name_prefix"] for e in ENVIRONMENTS]
    assert len(set(prefixes)) == len(prefixes), "each environment has its own prefix"


def test_only_dev_pushes_images_and_each_role_trusts_its_own_environment() -> None:
    """staging's and prod's CI roles cannot push to ECR; every role's trust names a GitHub
    environment, not a branch any workflow can run on."""
    pushers = [e for e in ENVIRONMENTS if _tfvars(e).get("github_can_push_images")]
    assert pushers == ["dev"]
    identity = load_config(INFRA / "modules" / "identity")
    (statement,) = identity.policy_document("github_assume")["statement"]
    subjects = [c["values"] for c in statement["condition"] if c["variable"].endswith(":sub")]
    assert subjects == [["repo:${var.github_repository}:environment:${var.github_environment}"]]
    assert identity.resource("aws_iam_role_policy", "github_actions")["count"] == (
        "${var.github_can_push_images ? 1 : 0}"
    )


def test_the_cluster_annotations_are_a_root_output() -> None:
    """An operator sees what the cluster was told: `tofu output cluster_annotations`."""
    output = load_config(STACK).outputs["cluster_annotations"]
    assert output["value"] == "${module.gitops_bridge.cluster_annotations}"
    json.dumps(output)
