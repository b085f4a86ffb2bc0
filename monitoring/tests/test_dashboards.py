"""The Grafana dashboards: in sync with their generator, and provisioned by kustomize."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml
from monitoring_sources import DASHBOARDS, MONITORING, REPO

sys.path.insert(0, str(MONITORING))
import generate_dashboards


def test_committed_dashboards_match_the_generator() -> None:
    rendered = generate_dashboards.render()
    assert sorted(rendered) == sorted(p.name for p in DASHBOARDS.glob("*.json"))
    for name, text in rendered.items():
        assert (DASHBOARDS / name).read_text() == text, (
            f"{name} is out of date: run `.venv/bin/python monitoring/generate_dashboards.py`"
        )


def test_the_check_mode_names_a_stale_dashboard(tmp_path, monkeypatch, capsys) -> None:
    for name, text in generate_dashboards.render().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "churn-api-model.json").write_text("{}\n")
    monkeypatch.setattr(generate_dashboards, "OUT", tmp_path)
    assert generate_dashboards.main(["--check"]) == 1
    assert "churn-api-model.json" in capsys.readouterr().err


def test_every_dashboard_is_marked_generated_and_has_panels_with_queries() -> None:
    for path in DASHBOARDS.glob("*.json"):
        dashboard = json.loads(path.read_text())
        assert path.read_text().splitlines()[1].strip().startswith('"description": "Code generated')
        assert dashboard["panels"], path.name
        assert all(panel["targets"] for panel in dashboard["panels"]), path.name


def test_kustomize_provisions_each_dashboard_for_the_grafana_sidecar() -> None:
    kubectl = REPO / ".venv" / "bin" / "kubectl"
    rendered = subprocess.run(
        [str(kubectl), "kustomize", str(MONITORING)], capture_output=True, text=True, check=True
    ).stdout
    documents = list(yaml.safe_load_all(rendered))
    maps = [d for d in documents if d["kind"] == "ConfigMap"]
    assert {name for d in maps for name in d["data"]} == {p.name for p in DASHBOARDS.glob("*.json")}
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["namespace"] == "monitoring"
    rule_files = len(list((MONITORING / "rules").glob("*.yaml")))
    assert [d["kind"] for d in documents].count("PrometheusRule") == rule_files
