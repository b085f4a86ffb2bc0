"""What every Argo template of the pipeline shares: image, identity, security, limits, retries.

The image is referenced by digest. ``IMAGE_DIGEST`` below is a placeholder
(all zeros) until the first release: the release workflow builds the
``churn-workflows`` image, then opens a pull request that replaces the digest on
this one line and re-runs ``make render``. The image is named without a registry:
the registry is each cluster's ECR, which the ApplicationSets that sync the rendered
manifests add from the cluster Secret (``kustomize.images``), keeping this digest.
"""

from __future__ import annotations

from typing import Final

from hera.workflows import Container, Env, Parameter, RetryStrategy, SecretEnv
from hera.workflows import models as m

__all__ = [
    "ARTIFACT_REPOSITORY",
    "DEADLINE_SECONDS",
    "IMAGE",
    "IMAGE_DIGEST",
    "MLFLOW_URI",
    "NAMESPACE",
    "SERVICE_ACCOUNT",
    "STORE_SECRET",
    "WORK",
    "github_env",
    "pod_security_context",
    "retry",
    "step",
    "store_env",
    "workflow_settings",
]

NAMESPACE: Final = "churn-training"
SERVICE_ACCOUNT: Final = "churn-workflows"
MLFLOW_URI: Final = "http://mlflow.mlflow.svc:5000"
# Placeholder until the first release; the release workflow's PR replaces it.
IMAGE_DIGEST: Final = "sha256:" + "0" * 64
IMAGE: Final = f"churn-workflows@{IMAGE_DIGEST}"
ARTIFACT_REPOSITORY: Final = m.ArtifactRepositoryRef(
    config_map="artifact-repositories", key="churn-s3"
)
# Every step writes under this emptyDir; the root filesystem is read-only.
WORK: Final = "/tmp/work"  # noqa: S108 - an emptyDir in the pod, not the host's /tmp
_UID: Final = 10001
# A whole run, training included, ends within this many seconds.
DEADLINE_SECONDS: Final = 4 * 3600


def pod_security_context() -> m.PodSecurityContext:
    """Non-root pods with the runtime's default seccomp profile."""
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=_UID,
        run_as_group=_UID,
        fs_group=_UID,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def _container_security_context() -> m.SecurityContext:
    return m.SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=m.Capabilities(drop=["ALL"]),
    )


def retry() -> RetryStrategy:
    """Retry what may be transient (pod errors, exit 75: S3, MLflow or GitHub unreachable)."""
    return RetryStrategy(
        limit=3,
        retry_policy="Always",
        expression="lastRetry.status == 'Error' || asInt(lastRetry.exitCode) == 75",
        backoff=m.Backoff(duration="15s", factor=m.IntOrString(2), max_duration="5m"),
    )


def step(
    name: str,
    module: str,
    args: list[str],
    *,
    inputs: list[object] | None = None,
    outputs: list[object] | None = None,
    memory: str = "1Gi",
    cpu: str = "500m",
    retries: bool = True,
    env: list[Env | SecretEnv] | None = None,
) -> Container:
    """A container template running ``python -m churn_workflows.steps.<module>`` from the image."""
    return Container(
        name=name,
        image=IMAGE,
        command=["python", "-m", f"churn_workflows.steps.{module}"],
        args=args,
        inputs=inputs,  # type: ignore[arg-type]
        outputs=outputs,  # type: ignore[arg-type]
        env=[
            Env(name="MLFLOW_TRACKING_URI", value=MLFLOW_URI),
            Env(name="MLFLOW_HTTP_REQUEST_MAX_RETRIES", value="3"),
            *(env or []),
        ],
        security_context=_container_security_context(),
        resources=m.ResourceRequirements(
            requests={"cpu": m.Quantity(cpu), "memory": m.Quantity(memory)},
            limits={"cpu": m.Quantity("2" if cpu != "500m" else "1"), "memory": m.Quantity(memory)},
        ),
        volume_mounts=[m.VolumeMount(name="work", mount_path="/tmp")],  # noqa: S108
        retry_strategy=retry() if retries else None,
        active_deadline_seconds=3600,
    )


def github_env() -> list[Env | SecretEnv]:
    """GitHub access for the steps that read the pin or open the PR: the GitHub App that mints
    each run a short-lived installation token (steps/promote.py), and owner/name."""
    secret = "churn-workflows-github"  # noqa: S105 - a Secret's name, not a secret
    keys = {
        "GITHUB_APP_ID": "app-id",
        "GITHUB_APP_INSTALLATION_ID": "installation-id",
        "GITHUB_APP_PRIVATE_KEY": "private-key",
        "GITHUB_REPOSITORY": "repository",
    }
    return [SecretEnv(name=env, secret_name=secret, secret_key=key) for env, key in keys.items()]


# The prediction store's URL (key "url"), made in churn-training from the environment's database.
STORE_SECRET: Final = "churn-predictions-db"  # noqa: S105 - a Secret's name, not a secret


def store_env(*, optional: bool = False) -> list[Env | SecretEnv]:
    """``CHURN_CAPTURE_URL`` from the prediction store's Secret; ``optional`` for a step that
    goes on without the store (its pod then starts with the variable unset)."""
    return [
        SecretEnv(
            name="CHURN_CAPTURE_URL",
            secret_name=STORE_SECRET,
            secret_key="url",  # noqa: S106 - a key's name, not a secret
            optional=optional or None,
        )
    ]


def workflow_settings() -> dict[str, object]:
    """The spec fields every WorkflowTemplate of the pipeline sets."""
    return {
        "namespace": NAMESPACE,
        "service_account_name": SERVICE_ACCOUNT,
        "security_context": pod_security_context(),
        "artifact_repository_ref": ARTIFACT_REPOSITORY,
        "active_deadline_seconds": DEADLINE_SECONDS,
        "pod_gc": m.PodGC(strategy="OnPodSuccess"),
        "ttl_strategy": m.TTLStrategy(seconds_after_success=86400, seconds_after_failure=7 * 86400),
        "volumes": [
            m.Volume(name="work", empty_dir=m.EmptyDirVolumeSource(size_limit=m.Quantity("4Gi")))
        ],
        "labels": {
            "app.kubernetes.io/name": "churn-workflows",
            "app.kubernetes.io/part-of": "churn",
        },
    }


def parameter(name: str, value: str, description: str, enum: list[str] | None = None) -> Parameter:
    """A workflow parameter as the Argo UI shows it: a described field, a list when ``enum``."""
    return Parameter(name=name, value=value, description=description, enum=enum)
