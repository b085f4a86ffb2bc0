"""Alerts reach people: Alertmanager's routes and receivers, and the scrape jobs that exist.

Read from the kube-prometheus-stack values every cluster gets and from the ExternalSecret in
monitoring/: every severity an alert carries routes to a real receiver, every credential a
receiver reads is a key of the Secret mounted into Alertmanager, and no scrape job is left for
control-plane parts EKS does not expose.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from monitoring_sources import MONITORING, REPO

VALUES: Final = REPO / "platform" / "apps" / "kube-prometheus-stack" / "values.yaml"
RECEIVERS_SECRET: Final = MONITORING / "alertmanager-receivers.yaml"
SECRETS_MOUNT: Final = Path("/etc/alertmanager/secrets")
MATCHER: Final = re.compile(r'^(\w+)(=~|!~|!=|=)"(.*)"$')
# Receiver fields that name a credential file (Alertmanager's *_file settings).
FILE_FIELDS: Final = ("routing_key_file", "service_key_file", "api_url_file", "url_file")


def _values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(VALUES.read_text())
    return values


def _matches(matchers: list[str], labels: dict[str, str]) -> bool:
    for matcher in matchers:
        found = MATCHER.match(matcher)
        assert found, f"not a matcher: {matcher}"
        name, op, value = found.groups()
        actual = labels.get(name, "")
        ok = {
            "=": actual == value,
            "!=": actual != value,
            "=~": re.fullmatch(value, actual) is not None,
            "!~": re.fullmatch(value, actual) is None,
        }[op]
        if not ok:
            return False
    return True


def receivers_for(route: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """The receivers Alertmanager notifies for an alert with ``labels`` (routing tree walk)."""
    chosen: list[str] = []
    for child in route.get("routes", []):
        if _matches(child.get("matchers", []), labels):
            chosen += receivers_for(child, labels)
            if not child.get("continue", False):
                return chosen
    return chosen or [route["receiver"]]


def _alert_labels() -> list[dict[str, str]]:
    labels = []
    for path in sorted((MONITORING / "rules").glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["spec"]["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    labels.append({"alertname": rule["alert"], **rule.get("labels", {})})
    return labels


def test_eks_control_plane_scrape_jobs_are_off() -> None:
    values = _values()
    for part in ("kubeControllerManager", "kubeScheduler", "kubeEtcd"):
        assert values.get(part, {}).get("enabled") is False, f"{part} would scrape nothing on EKS"


@pytest.mark.parametrize(
    "labels", _alert_labels(), ids=lambda labels: f"{labels['alertname']}-{labels['severity']}"
)
def test_every_alert_reaches_a_receiver_that_tells_someone(labels: dict[str, str]) -> None:
    config = _values()["alertmanager"]["config"]
    receivers = {r["name"]: r for r in config["receivers"]}
    chosen = receivers_for(config["route"], labels)
    told = [name for name in chosen if set(receivers[name]) - {"name"}]
    assert told, f"{labels['alertname']} ({labels['severity']}) reaches only {chosen}"
    if labels["severity"] == "critical":
        assert any("pagerduty_configs" in receivers[name] for name in told), "critical pages"


def test_the_watchdog_heartbeat_is_routed_to_nobody() -> None:
    config = _values()["alertmanager"]["config"]
    assert receivers_for(config["route"], {"alertname": "Watchdog", "severity": "none"}) == ["null"]


def test_receiver_credentials_come_from_the_external_secret_mounted_into_alertmanager() -> None:
    values = _values()["alertmanager"]
    mounted = set(values["alertmanagerSpec"]["secrets"])
    external = yaml.safe_load(RECEIVERS_SECRET.read_text())
    assert external["kind"] == "ExternalSecret"
    secret = external["spec"]["target"]["name"]
    keys = {item["secretKey"] for item in external["spec"]["data"]}
    assert secret in mounted
    files = [
        Path(config[field])
        for receiver in values["config"]["receivers"]
        for kind, configs in receiver.items()
        if kind.endswith("_configs")
        for config in configs
        for field in FILE_FIELDS
        if field in config
    ]
    assert files, "the receivers read no credential file"
    for path in files:
        assert path.parent == SECRETS_MOUNT / secret, path
        assert path.name in keys, f"{path.name} is not a key of {secret}"
    for receiver in values["config"]["receivers"]:
        for kind, configs in receiver.items():
            for config in configs if kind.endswith("_configs") else []:
                inline = {"routing_key", "service_key", "api_url", "url"} & set(config)
                assert not inline, f"{receiver['name']}: credential {inline} inline in Git"


def test_the_routing_walk_follows_continue_and_falls_back_to_the_default() -> None:
    route = {
        "receiver": "default",
        "routes": [
            {"receiver": "a", "matchers": ['severity="critical"'], "continue": True},
            {"receiver": "b", "matchers": ['severity=~"critical|warning"']},
        ],
    }
    assert receivers_for(route, {"severity": "critical"}) == ["a", "b"]
    assert receivers_for(route, {"severity": "warning"}) == ["b"]
    assert receivers_for(route, {"severity": "info"}) == ["default"]
