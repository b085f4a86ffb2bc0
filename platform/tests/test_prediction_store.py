"""The prediction store reaches every pod that uses it, in every environment.

churn-api captures into the store and the churn-monitor and churn-outcomes steps read it, all
through the Secret `churn-predictions-db` (key `url`). In the clusters that Secret is an
ExternalSecret built from the Secrets Manager entry OpenTofu names in the cluster Secret's
`predictions_db_secret_name` annotation. Checked on the rendered Applications (fixture
cluster Secrets): the entry's name comes from the annotation, the URL template gives a
TLS-requiring `postgresql://` URL that churn-api's own settings parser accepts, every pod that
names the Secret finds it in its namespace, churn-api mounts it optionally as a file (no
Secret: capture off, the service still starts; no password in its environment), and the
NetworkPolicies let the pods reach PostgreSQL.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from churn_api.capture import load_capture_settings

# --import-mode=importlib leaves this folder off sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from argocd_tree import cluster_params, generated_apps, render_source

ENVIRONMENTS = ("dev", "staging", "prod")
SECRET = "churn-predictions-db"
ANNOTATION = "predictions_db_secret_name"
# What OpenTofu writes into the entry (infra/opentofu/modules/database, secret "predictions").
ENTRY = {
    "username": "churn",
    "password": "Abc123xyz",
    "host": "churn-dev-mlflow.example.internal",
    "port": "5432",
    "dbname": "predictions",
}
_FIELD = re.compile(r"\{\{\s*\.([A-Za-z_]+)\s*\}\}")


def rendered(env: str) -> list[dict[str, Any]]:
    """Every resource the Git sources of `env`'s Applications render."""
    return [
        document
        for app in generated_apps(env)
        for source in app.sources
        for document in render_source(source)
    ]


def of_kind(documents: list[dict[str, Any]], kind: str) -> Iterator[dict[str, Any]]:
    return (d for d in documents if d.get("kind") == kind)


def predictions_db_secrets(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The ExternalSecrets that make `churn-predictions-db`, by namespace."""
    return {
        d["metadata"]["namespace"]: d
        for d in of_kind(documents, "ExternalSecret")
        if d["spec"]["target"]["name"] == SECRET
    }


def pod_specs(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Pod specs of a workload or of an Argo Workflows template."""
    spec = document.get("spec") or {}
    if document.get("kind") in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
        yield spec["template"]["spec"]
    elif document.get("kind") in {"WorkflowTemplate", "CronWorkflow"}:
        spec = spec.get("workflowSpec", spec)
        for template in spec.get("templates") or []:
            if "container" in template:
                yield {"containers": [template["container"]]}
            if "script" in template:
                yield {"containers": [template["script"]]}


def secret_refs(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                yield {"variable": env["name"], **ref}


def secret_files(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Mount path of each key of a Secret volume: the path and the volume's secret source."""
    volumes = {v["name"]: v["secret"] for v in pod.get("volumes") or [] if "secret" in v}
    files = {}
    for container in pod.get("containers", []):
        for mount in container.get("volumeMounts") or []:
            if mount["name"] in volumes:
                files[mount["mountPath"].rstrip("/")] = volumes[mount["name"]]
    return files


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_secret_comes_from_the_entry_the_cluster_names(env: str) -> None:
    entry = cluster_params(env)["metadata"]["annotations"][ANNOTATION]
    found = predictions_db_secrets(rendered(env))
    assert set(found) == {"churn", "churn-training"}, f"{env}: {SECRET} in {sorted(found)}"
    for namespace, external in found.items():
        keys = [item["extract"]["key"] for item in external["spec"]["dataFrom"]]
        assert keys == [entry], f"{env}/{namespace}: reads {keys}, the cluster names {entry!r}"
        assert set(external["spec"]["target"]["template"]["data"]) == {"url"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_url_requires_tls_and_churn_api_accepts_it(env: str) -> None:
    found = predictions_db_secrets(rendered(env))
    assert found, f"{env}: no ExternalSecret makes {SECRET}"
    for namespace, external in found.items():
        template = external["spec"]["target"]["template"]
        assert template["engineVersion"] == "v2"
        fields = set(_FIELD.findall(template["data"]["url"]))
        assert fields <= set(ENTRY), f"{env}/{namespace}: unknown fields {fields - set(ENTRY)}"
        url = _FIELD.sub(lambda m: ENTRY[m.group(1)], template["data"]["url"])
        parts = urlsplit(url)
        assert (parts.scheme, parts.username, parts.password) == (
            "postgresql",
            ENTRY["username"],
            ENTRY["password"],
        )
        assert (parts.hostname, parts.port, parts.path) == (
            ENTRY["host"],
            int(ENTRY["port"]),
            "/" + ENTRY["dbname"],
        )
        assert parse_qs(parts.query).get("sslmode") == ["require"], f"{env}/{namespace}: {url}"
        assert load_capture_settings({"CHURN_CAPTURE_URL": url}).store_url == url


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_pod_that_names_the_secret_finds_it_in_its_namespace(env: str) -> None:
    documents = rendered(env)
    made = predictions_db_secrets(documents)
    users = set()
    for document in documents:
        namespace = document.get("metadata", {}).get("namespace")
        name = document.get("metadata", {}).get("name")
        for pod in pod_specs(document):
            names = [ref["name"] for ref in secret_refs(pod) if ref["key"] == "url"]
            names += [v["secretName"] for v in secret_files(pod).values()]
            if SECRET in names:
                assert namespace in made, f"{env}: {name} in {namespace} finds no {SECRET}"
                users.add(name)
    assert {"churn-api", "churn-monitor", "churn-outcomes"} <= users, f"{env}: {sorted(users)}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_churn_api_captures_and_starts_without_the_secret(env: str) -> None:
    documents = rendered(env)
    (deployment,) = (
        d for d in of_kind(documents, "Deployment") if d["metadata"]["name"] == "churn-api"
    )
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    variables = {e["name"]: e.get("value") for e in container.get("env") or []}
    # The password stays out of the environment: the URL is a file of the mounted Secret.
    assert "CHURN_CAPTURE_URL" not in variables
    directory, _, key = variables["CHURN_CAPTURE_URL_FILE"].rpartition("/")
    volume = secret_files(pod)[directory]
    assert (volume["secretName"], key) == (SECRET, "url")
    # No Secret yet (a new environment, External Secrets down): the pod still starts.
    assert volume["optional"] is True
    assert key in predictions_db_secrets(documents)["churn"]["spec"]["target"]["template"]["data"]
    settings = {
        d["metadata"]["name"]: d["data"]
        for d in of_kind(documents, "ConfigMap")
        if d["metadata"]["name"].startswith("churn-api-settings")
    }
    (data,) = settings.values()
    assert 0 < float(data["CHURN_CAPTURE_SAMPLE_RATE"]) <= 1, env
    load_capture_settings(data)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_store_users_may_reach_postgresql(env: str) -> None:
    documents = rendered(env)
    for name, namespace in (("churn-api", "churn"), ("churn-workflows", "churn-training")):
        (policy,) = (
            d
            for d in of_kind(documents, "NetworkPolicy")
            if (d["metadata"]["name"], d["metadata"].get("namespace")) == (name, namespace)
        )
        ports = {
            port.get("port")
            for rule in policy["spec"].get("egress") or []
            for port in rule.get("ports") or []
        }
        assert 5432 in ports, f"{env}: {namespace}/{name} egress {sorted(map(str, ports))}"
