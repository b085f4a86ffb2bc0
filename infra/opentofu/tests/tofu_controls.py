"""The CIS EKS 1.4 and EKS best-practices controls that land in infra/opentofu, as checks.

Each check reads the HCL under an infra root (the real one, or a broken copy in a test)
and returns the problems it finds; an empty list means the control holds. ``CONTROLS``
pairs every check with the edits that must break it, which test_controls.py applies to
copies of the tree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tofu_hcl import ENVIRONMENTS, load_hcl

__all__ = ["CONTROLS", "Breakage", "Control"]

# The one statement allowed a "*" resource outside the load balancer controller's policy.
NON_RESOURCE_ACTIONS = {
    "ecr:GetAuthorizationToken",
    # ELB's Describe calls support no resource-level permissions (Argo Rollouts' verification).
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
}


def _parse(path: Path) -> dict[str, Any]:
    return load_hcl(path)


def _blocks(directory: Path, kind: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Labelled blocks (resource/data) of a module: {type: {name: body}}."""
    merged: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in _parse(path).get(kind, []):
            for type_, named in block.items():
                merged.setdefault(type_, {}).update(named)
    return merged


def _locals(directory: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in _parse(path).get("locals", []):
            merged.update(block)
    return merged


def _variables(directory: Path) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in _parse(path).get("variable", []):
            merged.update(block)
    return merged


def _one(value: Any) -> dict[str, Any]:
    """A nested block parses as a one-element list."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    return value if isinstance(value, dict) else {}


def _tfvars(infra: Path, env: str) -> dict[str, Any]:
    return _parse(infra / "envs" / env / "terraform.tfvars")


# ----------------------------------------------------------------------------- EKS


def eks_private_endpoint(infra: Path) -> list[str]:
    """CIS EKS 5.4.2: private endpoint on; public endpoint off unless CIDRs are listed."""
    problems = []
    module = infra / "modules" / "eks"
    cluster = _blocks(module, "resource")["aws_eks_cluster"]["this"]
    vpc = _one(cluster.get("vpc_config"))
    if vpc.get("endpoint_private_access") is not True:
        problems.append("aws_eks_cluster.this: endpoint_private_access must be true")
    if vpc.get("endpoint_public_access") != "${length(var.public_access_cidrs) > 0}":
        problems.append(
            "aws_eks_cluster.this: endpoint_public_access must be"
            " length(var.public_access_cidrs) > 0 (off unless CIDRs are listed)"
        )
    variable = _variables(module)["public_access_cidrs"]
    if variable.get("default") != []:
        problems.append("var.public_access_cidrs must default to [] (private only)")
    if "0.0.0.0/0" not in str(variable.get("validation")):
        problems.append("var.public_access_cidrs must reject 0.0.0.0/0")
    for env in ENVIRONMENTS:
        cidrs = _tfvars(infra, env).get("public_access_cidrs", [])
        if "0.0.0.0/0" in cidrs:
            problems.append(f"envs/{env}: public_access_cidrs opens the API to the internet")
    return problems


def _key_rotates(resources: dict[str, Any], reference: str) -> bool:
    match = re.fullmatch(r"\$\{aws_kms_key\.(\w+)\.arn\}", str(reference))
    if not match:
        return False
    key = resources.get("aws_kms_key", {}).get(match.group(1), {})
    return key.get("enable_key_rotation") is True


def eks_secrets_encryption(infra: Path) -> list[str]:
    """CIS EKS 5.3.1: Kubernetes Secrets envelope-encrypted with a customer KMS key that rotates."""
    problems = []
    resources = _blocks(infra / "modules" / "eks", "resource")
    cluster = resources["aws_eks_cluster"]["this"]
    encryption = _one(cluster.get("encryption_config"))
    if "secrets" not in encryption.get("resources", []):
        problems.append("aws_eks_cluster.this: encryption_config must cover secrets")
    key_arn = _one(encryption.get("provider")).get("key_arn")
    if not _key_rotates(resources, key_arn):
        problems.append(
            "aws_eks_cluster.this: secrets must be encrypted with an aws_kms_key"
            " of this module whose enable_key_rotation is true"
        )
    return problems


def eks_control_plane_logs(infra: Path) -> list[str]:
    """CIS EKS 2.1.1: all five control-plane log types go to CloudWatch."""
    module = infra / "modules" / "eks"
    cluster = _blocks(module, "resource")["aws_eks_cluster"]["this"]
    value = cluster.get("enabled_cluster_log_types")
    if value == "${local.log_types}":
        value = _locals(module).get("log_types")
    wanted = {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    missing = wanted - set(value or [])
    return (
        [f"aws_eks_cluster.this: control-plane logs missing {sorted(missing)}"] if missing else []
    )


def nodes_imdsv2_hop_limit(infra: Path) -> list[str]:
    """EKS best practices: node groups' launch templates require IMDSv2 with a hop limit of 1."""
    problems = []
    resources = _blocks(infra / "modules" / "eks", "resource")
    for name, group in resources.get("aws_eks_node_group", {}).items():
        template_ref = str(_one(group.get("launch_template")).get("id", ""))
        match = re.fullmatch(r"\$\{aws_launch_template\.(\w+)\.id\}", template_ref)
        if not match:
            problems.append(f"aws_eks_node_group.{name}: must use a launch template of this module")
            continue
        template = resources.get("aws_launch_template", {}).get(match.group(1), {})
        metadata = _one(template.get("metadata_options"))
        if metadata.get("http_tokens") != "required":
            problems.append(f"aws_launch_template.{match.group(1)}: http_tokens must be required")
        if metadata.get("http_put_response_hop_limit") != 1:
            problems.append(
                f"aws_launch_template.{match.group(1)}: http_put_response_hop_limit must be 1"
            )
    if not resources.get("aws_eks_node_group"):
        problems.append("modules/eks: no managed node group")
    return problems


# ----------------------------------------------------------------------------- S3


def s3_tls_only(infra: Path) -> list[str]:
    """Every bucket's policy denies requests that do not use TLS."""
    module = infra / "modules" / "storage"
    resources = _blocks(module, "resource")
    policy = resources.get("aws_s3_bucket_policy", {}).get("this", {})
    problems = []
    if policy.get("for_each") != "${aws_s3_bucket.this}":
        problems.append("aws_s3_bucket_policy.this must cover every aws_s3_bucket.this")
    match = re.fullmatch(
        r"\$\{data\.aws_iam_policy_document\.(\w+)\[each\.key\]\.json\}", str(policy.get("policy"))
    )
    if not match:
        return [*problems, "aws_s3_bucket_policy.this must use an aws_iam_policy_document"]
    document = _blocks(module, "data")["aws_iam_policy_document"][match.group(1)]
    denies_plain_http = False
    for statement in document.get("statement", []):
        conditions = statement.get("condition", [])
        principals = statement.get("principals", [])
        if (
            statement.get("effect") == "Deny"
            and statement.get("actions") == ["s3:*"]
            and any(p.get("identifiers") == ["*"] for p in principals)
            and any(
                c.get("test") == "Bool"
                and c.get("variable") == "aws:SecureTransport"
                and c.get("values") == ["false"]
                for c in conditions
            )
            and {"${each.value.arn}", "${each.value.arn}/*"} <= set(statement.get("resources", []))
        ):
            denies_plain_http = True
    if not denies_plain_http:
        problems.append(
            f"aws_iam_policy_document.{match.group(1)}: needs a Deny s3:* for everyone on the"
            " bucket and its objects when aws:SecureTransport is false"
        )
    return problems


def s3_public_access_block(infra: Path) -> list[str]:
    """Every bucket blocks public ACLs and policies, and ACLs are disabled."""
    resources = _blocks(infra / "modules" / "storage", "resource")
    problems = []
    block = resources.get("aws_s3_bucket_public_access_block", {}).get("this", {})
    if block.get("for_each") != "${aws_s3_bucket.this}":
        problems.append("aws_s3_bucket_public_access_block.this must cover every bucket")
    for flag in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        if block.get(flag) is not True:
            problems.append(f"aws_s3_bucket_public_access_block.this: {flag} must be true")
    ownership = resources.get("aws_s3_bucket_ownership_controls", {}).get("this", {})
    if _one(ownership.get("rule")).get("object_ownership") != "BucketOwnerEnforced":
        problems.append("aws_s3_bucket_ownership_controls.this: must be BucketOwnerEnforced")
    return problems


# ----------------------------------------------------------------------------- ECR


def ecr_immutable_and_scanned(infra: Path) -> list[str]:
    """CIS EKS 5.1.1 and best practices: immutable tags, scan on push, KMS."""
    resources = _blocks(infra / "modules" / "ecr", "resource")
    problems = []
    for name, repo in resources.get("aws_ecr_repository", {}).items():
        if repo.get("image_tag_mutability") != "IMMUTABLE":
            problems.append(f"aws_ecr_repository.{name}: image_tag_mutability must be IMMUTABLE")
        if _one(repo.get("image_scanning_configuration")).get("scan_on_push") is not True:
            problems.append(f"aws_ecr_repository.{name}: scan_on_push must be true")
        if _one(repo.get("encryption_configuration")).get("encryption_type") != "KMS":
            problems.append(f"aws_ecr_repository.{name}: encryption_type must be KMS")
    if not resources.get("aws_ecr_repository"):
        problems.append("modules/ecr: no repository")
    return problems


# ----------------------------------------------------------------------------- state


def state_encryption(infra: Path) -> list[str]:
    """Each root: S3 backend with native locking, and OpenTofu state and plan encryption
    with an AWS KMS key provider, enforced."""
    problems = []
    for env in ENVIRONMENTS:
        where = f"envs/{env}/backend.tf"
        terraform = list(_parse(infra / "envs" / env / "backend.tf").get("terraform", []))
        backend = {}
        encryption: dict[str, Any] = {}
        for block in terraform:
            backend.update(_one(block.get("backend", [{}])).get("s3", {}))
            encryption.update(_one(block.get("encryption", [{}])))
        if backend.get("use_lockfile") is not True:
            problems.append(f"{where}: the s3 backend must set use_lockfile = true")
        if backend.get("encrypt") is not True:
            problems.append(f"{where}: the s3 backend must set encrypt = true")
        providers = _one(encryption.get("key_provider", [{}])).get("aws_kms", {})
        if not providers or not all(p.get("kms_key_id") for p in providers.values()):
            problems.append(f"{where}: encryption needs an aws_kms key_provider with a kms_key_id")
        methods = _one(encryption.get("method", [{}])).get("aes_gcm", {})
        method_names = {
            name
            for name, body in methods.items()
            if re.fullmatch(r"\$\{key_provider\.aws_kms\.\w+\}", str(body.get("keys")))
        }
        if not method_names:
            problems.append(f"{where}: encryption needs an aes_gcm method keyed by aws_kms")
        for target in ("state", "plan"):
            settings = _one(encryption.get(target, [{}]))
            method = re.fullmatch(r"\$\{method\.aes_gcm\.(\w+)\}", str(settings.get("method")))
            if not method or method.group(1) not in method_names:
                problems.append(f"{where}: {target} must use the KMS-keyed aes_gcm method")
            if settings.get("enforced") is not True:
                problems.append(f"{where}: {target} encryption must be enforced")
    return problems


# ----------------------------------------------------------------------------- identity


def github_oidc_scoped(infra: Path) -> list[str]:
    """The CI role trusts GitHub's OIDC tokens only for this repository's jobs in this
    environment's GitHub environment (so main cannot borrow prod's role)."""
    module = infra / "modules" / "identity"
    document = _blocks(module, "data")["aws_iam_policy_document"]["github_assume"]
    locals_ = _locals(module)
    issuer = locals_.get("github")
    problems = []
    if issuer != "token.actions.githubusercontent.com":
        problems.append("local.github must be token.actions.githubusercontent.com")
    wanted_sub = "repo:${var.github_repository}:environment:${var.github_environment}"
    for statement in document.get("statement", []):
        conditions = {c.get("variable"): c for c in statement.get("condition", [])}
        sub = conditions.get("${local.github}:sub")
        aud = conditions.get("${local.github}:aud")
        if not sub or sub.get("test") != "StringEquals" or sub.get("values") != [wanted_sub]:
            problems.append(
                f"github_assume: the :sub condition must be StringEquals [{wanted_sub!r}]"
            )
        if (
            not aud
            or aud.get("test") != "StringEquals"
            or aud.get("values") != ["sts.amazonaws.com"]
        ):
            problems.append(
                "github_assume: the :aud condition must be StringEquals sts.amazonaws.com"
            )
    if not document.get("statement"):
        problems.append("github_assume: no statement")
    variables = _variables(module)
    for name in ("github_repository", "github_environment"):
        condition = str(_one(variables[name].get("validation")).get("condition", ""))
        if "regex" not in condition or "*" in condition:
            problems.append(f"var.{name}: must be validated by a regex that admits no wildcard")
    for env in ENVIRONMENTS:
        repo = str(_tfvars(infra, env).get("github_repository", ""))
        if not re.fullmatch(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+", repo):
            problems.append(f"envs/{env}: github_repository {repo!r} must be exactly owner/name")
    return problems


def workload_trust_scoped(infra: Path) -> list[str]:
    """Each IRSA role trusts exactly its own service account (EKS best practices)."""
    document = _blocks(infra / "modules" / "identity", "data")["aws_iam_policy_document"][
        "workload_assume"
    ]
    problems = []
    for statement in document.get("statement", []):
        conditions = {c.get("variable"): c for c in statement.get("condition", [])}
        sub = conditions.get("${var.oidc_issuer}:sub", {})
        if sub.get("test") != "StringEquals" or sub.get("values") != [
            "system:serviceaccount:${each.value.namespace}:${each.key}"
        ]:
            problems.append(
                "workload_assume: :sub must be StringEquals the role's own service account"
            )
        if conditions.get("${var.oidc_issuer}:aud", {}).get("values") != ["sts.amazonaws.com"]:
            problems.append("workload_assume: :aud must be sts.amazonaws.com")
    return problems


def _is_read(action: str) -> bool:
    verb = action.split(":", 1)[-1]
    return verb.startswith(("Describe", "Get", "List"))


def workload_policies_name_their_resources(infra: Path) -> list[str]:
    """No workload or CI policy grants on "*", except the calls that have no resource
    (ecr:GetAuthorizationToken), the load balancer controller's documented policy, and the
    Cluster Autoscaler's, whose every write is conditioned on its cluster's tag."""
    documents = _blocks(infra / "modules" / "identity", "data")["aws_iam_policy_document"]
    problems = []
    for statement in documents.get("cluster_autoscaler", {}).get("statement", []):
        writes = [a for a in statement.get("actions", []) if not _is_read(a)]
        conditions = {c.get("variable", "") for c in statement.get("condition", [])}
        tag = "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.cluster_name}"
        if writes and tag not in conditions:
            problems.append(f"cluster_autoscaler: {writes} not limited to the cluster's groups")
    for name, document in documents.items():
        if name in ("aws_load_balancer_controller", "cluster_autoscaler") or name.endswith(
            "_assume"
        ):
            continue
        for statement in document.get("statement", []):
            resources = statement.get("resources", [])
            resources = [resources] if isinstance(resources, str) else resources
            if "*" in resources and not set(statement.get("actions", [])) <= NON_RESOURCE_ACTIONS:
                problems.append(f"aws_iam_policy_document.{name}: {statement.get('actions')} on *")
            if any(a.endswith(":*") or a == "*" for a in statement.get("actions", [])):
                problems.append(f"aws_iam_policy_document.{name}: wildcard action")
    churn_api = documents.get("churn_api", {})
    for statement in churn_api.get("statement", []):
        if any(
            a.startswith("s3:") and not a.startswith("s3:GetObject")
            for a in statement.get("actions", [])
        ):
            problems.append("churn_api: may only read objects")
        for resource in statement.get("resources", []):
            if resource.startswith("${var.bucket_arns") and "models" not in resource:
                problems.append("churn_api: may only read the models bucket")
    return problems


# ----------------------------------------------------------------------------- sizing


def prod_keeps_logs_a_year(infra: Path) -> list[str]:
    """prod keeps control-plane and flow logs at least 365 days (CIS 2.1.1 audit trail)."""
    days = _tfvars(infra, "prod").get("log_retention_days", 0)
    return [] if days >= 365 else [f"envs/prod: log_retention_days is {days}, needs >= 365"]


def prod_database_is_protected(infra: Path) -> list[str]:
    """prod's MLflow database is Multi-AZ, deletion-protected and keeps backups."""
    tfvars = _tfvars(infra, "prod")
    problems = []
    if tfvars.get("db_multi_az") is not True:
        problems.append("envs/prod: db_multi_az must be true")
    if tfvars.get("db_deletion_protection") is not True:
        problems.append("envs/prod: db_deletion_protection must be true")
    if tfvars.get("db_backup_retention_days", 0) < 7:
        problems.append("envs/prod: db_backup_retention_days must be at least 7")
    return problems


# ----------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Breakage:
    """One edit that must make a control fail: replace old by new in file (relative to infra)."""

    file: str
    old: str
    new: str


@dataclass(frozen=True)
class Control:
    """A control, its check and the edits that must break it."""

    name: str
    check: Callable[[Path], list[str]]
    breakages: tuple[Breakage, ...]


_EKS = "modules/eks/main.tf"
_S3 = "modules/storage/main.tf"
_ECR = "modules/ecr/main.tf"
_IAM = "modules/identity/main.tf"

CONTROLS: tuple[Control, ...] = (
    Control(
        "eks-private-endpoint",
        eks_private_endpoint,
        (
            Breakage(
                _EKS,
                "endpoint_public_access  = length(var.public_access_cidrs) > 0",
                "endpoint_public_access  = true",
            ),
            Breakage(_EKS, "endpoint_private_access = true", "endpoint_private_access = false"),
            Breakage(
                "envs/prod/terraform.tfvars",
                'environment        = "prod"',
                'environment        = "prod"\npublic_access_cidrs = ["0.0.0.0/0"]',
            ),
        ),
    ),
    Control(
        "eks-secrets-kms-rotating",
        eks_secrets_encryption,
        (
            Breakage(_EKS, "enable_key_rotation     = true", "enable_key_rotation     = false"),
            Breakage(_EKS, 'resources = ["secrets"]', "resources = []"),
        ),
    ),
    Control(
        "eks-control-plane-logs",
        eks_control_plane_logs,
        (Breakage(_EKS, '"controllerManager", "scheduler"]', '"controllerManager"]'),),
    ),
    Control(
        "nodes-imdsv2-hop-limit-1",
        nodes_imdsv2_hop_limit,
        (
            Breakage(_EKS, "http_put_response_hop_limit = 1", "http_put_response_hop_limit = 2"),
            Breakage(_EKS, 'http_tokens                 = "required"', 'http_tokens = "optional"'),
        ),
    ),
    Control(
        "s3-tls-only",
        s3_tls_only,
        (
            Breakage(
                _S3,
                'sid     = "DenyInsecureTransport"\n    effect  = "Deny"',
                'sid     = "DenyInsecureTransport"\n    effect  = "Allow"',
            ),
            Breakage(_S3, 'values   = ["false"]', 'values   = ["true"]'),
        ),
    ),
    Control(
        "s3-public-access-block",
        s3_public_access_block,
        (
            Breakage(_S3, "restrict_public_buckets = true", "restrict_public_buckets = false"),
            Breakage(_S3, '"BucketOwnerEnforced"', '"ObjectWriter"'),
        ),
    ),
    Control(
        "ecr-immutable-scanned",
        ecr_immutable_and_scanned,
        (
            Breakage(_ECR, '"IMMUTABLE"', '"MUTABLE"'),
            Breakage(_ECR, "scan_on_push = true", "scan_on_push = false"),
        ),
    ),
    Control(
        "state-encryption",
        state_encryption,
        (
            Breakage("envs/prod/backend.tf", "use_lockfile = true", "use_lockfile = false"),
            Breakage(
                "envs/staging/backend.tf",
                "state {\n      method   = method.aes_gcm.state\n      enforced = true",
                "state {\n      method   = method.aes_gcm.state\n      enforced = false",
            ),
            Breakage("envs/dev/backend.tf", 'key_provider "aws_kms"', 'key_provider "pbkdf2"'),
        ),
    ),
    Control(
        "github-oidc-sub-scoped",
        github_oidc_scoped,
        (
            Breakage(
                _IAM,
                '"repo:${var.github_repository}:environment:${var.github_environment}"',
                '"repo:${var.github_repository}:ref:refs/heads/main"',
            ),
            Breakage(
                _IAM,
                'test     = "StringEquals"\n      variable = "${local.github}:sub"',
                'test     = "StringLike"\n      variable = "${local.github}:sub"',
            ),
            Breakage(
                "envs/dev/terraform.tfvars",
                'github_repository         = "example-org/churn-platform"',
                'github_repository         = "example-org/*"',
            ),
        ),
    ),
    Control(
        "irsa-trust-per-service-account",
        workload_trust_scoped,
        (
            Breakage(
                _IAM,
                '"system:serviceaccount:${each.value.namespace}:${each.key}"',
                '"system:serviceaccount:${each.value.namespace}:*"',
            ),
        ),
    ),
    Control(
        "least-privilege-policies",
        workload_policies_name_their_resources,
        (
            Breakage(
                _IAM,
                'resources = ["${var.bucket_arns["models"]}/${var.models_prefix}*"]',
                'resources = ["*"]',
            ),
            Breakage(_IAM, '"ecr:PutImage",', '"ecr:*",'),
            Breakage(
                _IAM,
                'variable = "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.cluster_name}"',
                'variable = "aws:ResourceTag/Name"',
            ),
        ),
    ),
    Control(
        "prod-logs-a-year",
        prod_keeps_logs_a_year,
        (
            Breakage(
                "envs/prod/terraform.tfvars", "log_retention_days = 365", "log_retention_days = 30"
            ),
        ),
    ),
    Control(
        "prod-database-protected",
        prod_database_is_protected,
        (
            Breakage(
                "envs/prod/terraform.tfvars",
                "db_multi_az              = true",
                "db_multi_az = false",
            ),
            Breakage(
                "envs/prod/terraform.tfvars",
                "db_deletion_protection   = true",
                "db_deletion_protection = false",
            ),
        ),
    ),
)
