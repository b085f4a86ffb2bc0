"""Read what the monitoring consists of, and check every metric and label it names.

Steps: take the rule groups out of the PrometheusRule (what ``promtool`` loads), the
queries out of the AnalysisTemplates (arguments filled in) and the Grafana dashboards;
parse each query with a real PromQL parser; walk it, inferring the labels each
sub-expression carries; report every metric that is neither exposed by the service,
nor a recording rule, nor on the allow-list, and every label used where it cannot exist.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import promql_parser as pp
import yaml
from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "ALERT_TESTS",
    "ANALYSIS",
    "ARGO_ROLLOUTS_METRICS",
    "BUILD",
    "DASHBOARDS",
    "HEALTHY_CANARY_VERDICTS",
    "MONITORING",
    "REPO",
    "RULES",
    "SCRAPE_LABELS",
    "Query",
    "analysis_metrics",
    "analysis_queries",
    "check_queries",
    "crd_schema",
    "dashboard_queries",
    "exposed_labels",
    "rule_groups",
    "rule_queries",
    "substitute_args",
    "write_rules",
]

MONITORING: Final = Path(__file__).resolve().parents[1]
REPO: Final = MONITORING.parent
RULES: Final = MONITORING / "rules" / "churn-api.yaml"
ANALYSIS: Final = REPO / "platform" / "apps" / "churn-api" / "base" / "analysistemplate.yaml"
DASHBOARDS: Final = MONITORING / "dashboards"
# Test-only intermediates (the extracted rule file, one file per promtool test group).
BUILD: Final = REPO / "build" / "monitoring"

# Alert name -> [(promtool test sentence, outcome)], filled by test_rules.py for the summary.
ALERT_TESTS: Final[dict[str, list[tuple[str, str]]]] = {}

# Labels Prometheus attaches to every scraped series: the target labels of docs/contracts.md
# (the ServiceMonitor sets them) and the two Prometheus always adds.
SCRAPE_LABELS: Final = frozenset(
    {"namespace", "pod", "service", "rollouts_pod_template_hash", "job", "instance"}
)

# The only metrics not from churn-api: the Argo Rollouts controller's, for the releases
# dashboard (controller/metrics/prommetrics.go in argoproj/argo-rollouts), with their labels.
ARGO_ROLLOUTS_METRICS: Final[Mapping[str, frozenset[str]]] = {
    "analysis_run_info": frozenset({"namespace", "name", "phase"}),
    "analysis_run_metric_phase": frozenset(
        {"namespace", "name", "metric", "type", "dry_run", "phase"}
    ),
    "rollout_info": frozenset({"namespace", "name", "strategy", "traffic_router", "phase"}),
    "rollout_events_total": frozenset({"namespace", "name", "type", "reason"}),
}

# Grafana's built-in variables are not PromQL; the check reads them as a plain range.
GRAFANA_RANGES: Final = re.compile(r"\$__(rate_interval|interval|range)")
GRAFANA_VARIABLE: Final = re.compile(r"\$\{?(\w+)\}?")
ARG: Final = re.compile(r"\{\{\s*args\.([\w-]+)\s*\}\}")


def crd_schema(name: str) -> dict[str, Any]:
    """A CRD's JSON schema from $CRD_SCHEMAS (the Makefile sets it; `make schemas` fetches one)."""
    default = next(
        (
            p
            for p in (REPO.parent / "shared/schemas/crds", REPO / ".local/schemas/crds")
            if p.is_dir()
        ),
        None,
    )
    root = Path(os.environ["CRD_SCHEMAS"]) if os.environ.get("CRD_SCHEMAS") else default
    if root is None or not (root / name).is_file():
        raise AssertionError(f"no CRD schema {name}: set CRD_SCHEMAS or run `make schemas`")
    schema: dict[str, Any] = json.loads((root / name).read_text())
    return schema


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it lives (for error messages)."""

    where: str
    expr: str


def rule_groups(path: Path = RULES) -> list[dict[str, Any]]:
    """The ``spec.groups`` of the PrometheusRule: exactly what promtool loads."""
    document = yaml.safe_load(path.read_text())
    groups: list[dict[str, Any]] = document["spec"]["groups"]
    return groups


def write_rules(groups: list[dict[str, Any]], path: Path) -> Path:
    """Write ``groups`` as a plain Prometheus rule file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def rule_queries(groups: list[dict[str, Any]]) -> list[Query]:
    return [
        Query(
            f"rule {rule.get('record') or rule.get('alert')} (group {group['name']})", rule["expr"]
        )
        for group in groups
        for rule in group["rules"]
    ]


def analysis_metrics(path: Path = ANALYSIS) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(template, metric) for every metric of every AnalysisTemplate in ``path``."""
    return [
        (template, metric)
        for template in yaml.safe_load_all(path.read_text())
        if template and template.get("kind") == "AnalysisTemplate"
        for metric in template["spec"]["metrics"]
    ]


def substitute_args(text: str, args: Mapping[str, str]) -> str:
    """Fill ``{{args.NAME}}`` the way Argo Rollouts does; an unknown argument is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in args:
            raise KeyError(f"argument {name!r} is not given")
        return args[name]

    return ARG.sub(value, text)


def analysis_queries(path: Path = ANALYSIS) -> list[Query]:
    """Each AnalysisTemplate query, with every declared argument set to a sample hash."""
    queries = []
    for template, metric in analysis_metrics(path):
        args = {arg["name"]: f"sample-{arg['name']}" for arg in template["spec"].get("args", [])}
        where = f"AnalysisTemplate {template['metadata']['name']} metric {metric['name']}"
        queries.append(
            Query(where, substitute_args(metric["provider"]["prometheus"]["query"], args))
        )
    return queries


def dashboard_queries(directory: Path = DASHBOARDS) -> list[Query]:
    """Every target expression of every panel of every dashboard JSON in ``directory``."""
    queries = []
    for path in sorted(directory.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard.get("panels", []):
            for target in panel.get("targets", []):
                expr = GRAFANA_RANGES.sub("5m", target["expr"])
                expr = GRAFANA_VARIABLE.sub("var", expr)
                queries.append(Query(f"dashboard {path.name} panel {panel['title']!r}", expr))
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            match = re.fullmatch(
                r"label_values\((.+),\s*(\w+)\)",
                str(query.get("query") if isinstance(query, dict) else query),
            )
            if match:
                expr = GRAFANA_VARIABLE.sub("var", match.group(1))
                queries.append(
                    Query(
                        f"dashboard {path.name} variable {variable['name']!r}",
                        f"count by ({match.group(2)}) ({expr})",
                    )
                )
    return queries


def exposed_labels(exposition: str) -> dict[str, frozenset[str]]:
    """Sample name -> label names, from a ``/metrics`` text (``_bucket`` carries ``le``)."""
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(exposition):
        names = {family.name}
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
        for name in names:
            labels.setdefault(name, set())
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(found) for name, found in labels.items()}


class _Checker:
    """Infers the labels of each sub-expression and collects what cannot exist."""

    def __init__(self, known: Mapping[str, frozenset[str]]) -> None:
        self.known = known
        self.problems: list[str] = []

    def labels(self, node: Any, where: str) -> frozenset[str] | None:
        """The label names ``node``'s series carry; None for a scalar or a string."""
        kind = type(node).__name__
        if kind == "VectorSelector":
            if node.name not in self.known:
                self.problems.append(f"{where}: metric {node.name} is not exposed by churn-api")
                return frozenset()
            carried = self.known[node.name]
            for matcher in node.matchers.matchers:
                self.require(matcher.name, carried, where, f"selector {node.name}")
            return carried
        if kind == "MatrixSelector":
            return self.labels(node.vector_selector, where)
        if kind in {"ParenExpr", "UnaryExpr", "SubqueryExpr"}:
            return self.labels(node.expr, where)
        if kind in {"NumberLiteral", "StringLiteral"}:
            return None
        if kind == "Call":
            return self.call(node, where)
        if kind == "AggregateExpr":
            inner = self.labels(node.expr, where) or frozenset()
            if node.modifier is None:
                kept: frozenset[str] = frozenset()
            else:
                for label in node.modifier.labels:
                    self.require(label, inner, where, f"{node.op} by/without")
                if str(node.modifier.type).endswith("By"):
                    kept = frozenset(node.modifier.labels)
                else:
                    kept = inner - set(node.modifier.labels)
            if str(node.op) in {"topk", "bottomk", "limitk"}:
                return inner
            if str(node.op) == "count_values":
                return kept | {node.param.val}
            return kept
        if kind == "BinaryExpr":
            return self.binary(node, where)
        raise AssertionError(f"{where}: no label inference for {kind}")

    def call(self, node: Any, where: str) -> frozenset[str] | None:
        name = node.func.name
        args = [self.labels(arg, where) for arg in node.args]
        if name == "histogram_quantile":
            inner = args[1] or frozenset()
            self.require("le", inner, where, "histogram_quantile")
            return inner - {"le"}
        if name == "label_replace":
            inner = args[0] or frozenset()
            self.require(node.args[3].val, inner, where, "label_replace source")
            return inner | {node.args[1].val}
        if name in {"vector", "time", "scalar", "absent", "absent_over_time"}:
            return frozenset() if name != "scalar" else None
        vectors = [arg for arg in args if arg is not None]
        return vectors[0] if vectors else None

    def binary(self, node: Any, where: str) -> frozenset[str] | None:
        left = self.labels(node.lhs, where)
        right = self.labels(node.rhs, where)
        if left is None or right is None:
            return left if right is None else right
        modifier = node.modifier
        matching = modifier.matching if modifier is not None else None
        group = list(modifier.group_labels or []) if modifier is not None else []
        if matching is not None:
            for label in matching.labels:
                self.require(label, left | right, where, f"{node.op} on/ignoring")
        card = str(modifier.card) if modifier is not None else ""
        if card.endswith("ManyToOne"):
            for label in group:
                self.require(label, right, where, "group_left")
            return left | set(group)
        if card.endswith("OneToMany"):
            for label in group:
                self.require(label, left, where, "group_right")
            return right | set(group)
        if str(node.op) == "or":
            return left | right
        if (
            matching is not None
            and str(matching.type).endswith("Include")
            and str(node.op) not in {"and", "unless"}
        ):
            return frozenset(matching.labels)
        return left

    def require(self, label: str, carried: Iterable[str], where: str, context: str) -> None:
        if label not in set(carried):
            self.problems.append(f"{where}: label {label} does not exist there ({context})")


def check_queries(
    queries: Iterable[Query],
    exposed: Mapping[str, frozenset[str]],
    groups: list[dict[str, Any]],
    allowed: Mapping[str, frozenset[str]] | None = None,
) -> list[str]:
    """Every problem with the metrics and labels ``queries`` name; empty when all exist."""
    known: dict[str, frozenset[str]] = {
        name: labels | SCRAPE_LABELS for name, labels in exposed.items()
    }
    known.update(allowed or {})
    checker = _Checker(known)
    # Recording rules in file order: a rule may read the ones recorded before it.
    for group in groups:
        for rule in group["rules"]:
            if "record" not in rule:
                continue
            where = f"rule {rule['record']} (group {group['name']})"
            carried = _parse(rule["expr"], where, checker.problems)
            labels = checker.labels(carried, where) if carried is not None else frozenset()
            extra = frozenset(rule.get("labels", {}))
            known[rule["record"]] = (
                known.get(rule["record"], frozenset()) | (labels or frozenset()) | extra
            )
    for query in queries:
        tree = _parse(query.expr, query.where, checker.problems)
        if tree is not None:
            checker.labels(tree, query.where)
    return list(dict.fromkeys(checker.problems))


def _parse(expr: str, where: str, problems: list[str]) -> Any:
    try:
        return pp.parse(expr)
    except ValueError as exc:
        problems.append(f"{where}: PromQL does not parse: {exc}")
        return None


# What a healthy canary's analysis may end in, by AnalysisTemplate. Latency measures the test
# machine as much as the service: on a loaded machine a healthy canary's p99 can pass the
# 250 ms condition, so there the tests ask for a verdict (the query has data), not for a speed.
# Speed is measured by `make bench`.
HEALTHY_CANARY_VERDICTS: dict[str, set[str]] = {
    "churn-api-success-rate": {"Successful"},
    "churn-api-latency-p99": {"Successful", "Failed"},
    "churn-api-prediction-shift": {"Successful"},
}
