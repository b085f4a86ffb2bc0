"""Evaluate Kyverno ValidatingPolicies offline, with a real CEL engine.

The kyverno CLI runs in CI only; this module lets `make test` reach the same verdicts here:

1. Load a `policies.kyverno.io/v1` ValidatingPolicy and compile every CEL expression
   (variables, matchConditions, validations, messageExpressions) with the
   `common-expression-language` engine, so a syntax error names its policy and expression.
2. Autogen as Kyverno does it (pkg/cel/autogen): a policy matching only `pods` also gets one
   variant for Deployments, DaemonSets, StatefulSets, ReplicaSets and Jobs, with
   `object.spec` -> `object.spec.template.spec` and `object.metadata` ->
   `object.spec.template.metadata` rewritten in its expressions (`.name` and `.namespace`
   stay on the controller), and one for CronJobs (`spec.jobTemplate.spec.template`). Each
   matchCondition is guarded with the controller's kind, as Kyverno writes it.
3. Match a resource against `matchConstraints.resourceRules` (operation CREATE) and
   `namespaceSelector` (the namespace's rendered labels plus `kubernetes.io/metadata.name`,
   as the API server sets it; cluster-scoped objects are never skipped), run the
   matchConditions (any false: not matched), then every validation. An exception
   (`policies.kyverno.io/v1` PolicyException) whose matchConditions all hold turns the result
   into `skip`, as `reportResult: skip` does.

The engine implements CEL's core and the macros; it lacks the optional syntax (`a.?b`), so
policies guard fields with `has()`. Of Kyverno's CEL libraries one function is provided here,
`resource.List(apiVersion, resource, namespace)`, backed by the test's context resources
instead of a cluster (as the kyverno CLI's `context:` file does), because a policy that needs
a NetworkPolicy in the namespace must look it up. Any other extension function fails the
evaluation with its name rather than passing silently.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cel
import yaml

__all__ = [
    "AUTOGEN_CONTROLLERS",
    "CompiledException",
    "CompiledPolicy",
    "Outcome",
    "PolicyError",
    "autogen_rewrite",
    "compile_policy",
    "load_documents",
    "load_exceptions",
    "namespace_labels",
    "plural",
    "selector_matches",
]

POLICY_API = "policies.kyverno.io/v1"

# Kyverno's autogen targets (pkg/cel/autogen/config.go): resource -> (group, version, kind).
AUTOGEN_CONTROLLERS: dict[str, tuple[str, str, str]] = {
    "daemonsets": ("apps", "v1", "DaemonSet"),
    "deployments": ("apps", "v1", "Deployment"),
    "replicasets": ("apps", "v1", "ReplicaSet"),
    "statefulsets": ("apps", "v1", "StatefulSet"),
    "jobs": ("batch", "v1", "Job"),
    "cronjobs": ("batch", "v1", "CronJob"),
}
_REPLACEMENTS = {
    "defaults": (("spec", "spec.template.spec"), ("metadata", "spec.template.metadata")),
    "cronjobs": (
        ("spec", "spec.jobTemplate.spec.template.spec"),
        ("metadata", "spec.jobTemplate.spec.template.metadata"),
    ),
}
_PROTECTED = re.compile(r"\.(name|namespace)(?![A-Za-z0-9_])")
# Irregular plurals of the kinds our manifests use; the rest add "s".
_PLURALS = {
    "NetworkPolicy": "networkpolicies",
    "Ingress": "ingresses",
    "PodDisruptionBudget": "poddisruptionbudgets",
}
_EVAL_ERRORS = (KeyError, TypeError, RuntimeError, ValueError, IndexError)


class PolicyError(ValueError):
    """A policy or exception that cannot be compiled or evaluated here, with its name."""


@dataclass(frozen=True)
class Outcome:
    """The verdict of one policy on one resource.

    - result: pass, fail, skip (matched, but a PolicyException applies) or error
    - failed: indexes of the validations that evaluated to false
    - messages: their messages, in the same order
    - detail: the expression and error when result is error, the exception when skip
    """

    result: str
    failed: tuple[int, ...] = ()
    messages: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class _Expr:
    source: str
    program: Any


@dataclass(frozen=True)
class _Variant:
    """The policy as applied to one set of kinds (the policy itself, or one autogen rule)."""

    name: str
    rules: tuple[Mapping[str, Any], ...]
    excludes: tuple[Mapping[str, Any], ...]
    variables: tuple[tuple[str, _Expr], ...]
    conditions: tuple[tuple[str, _Expr], ...]
    validations: tuple[tuple[_Expr, str, _Expr | None], ...]


@dataclass(frozen=True)
class CompiledException:
    """A compiled PolicyException: the policies it names and its matchConditions."""

    name: str
    policies: frozenset[str]
    conditions: tuple[tuple[str, _Expr], ...]
    reason: str


@dataclass
class CompiledPolicy:
    """A ValidatingPolicy ready to evaluate, with its autogen variants."""

    name: str
    validation_count: int
    autogen_kinds: tuple[str, ...]
    # matchConstraints.namespaceSelector: the API server skips the webhook outside it.
    namespace_selector: Mapping[str, Any] = field(default_factory=dict)
    variants: list[_Variant] = field(default_factory=list)

    def evaluate(
        self,
        resource: Mapping[str, Any],
        *,
        context_resources: Sequence[Mapping[str, Any]] = (),
        exceptions: Iterable[CompiledException] = (),
    ) -> Outcome | None:
        """Return the outcome on `resource`, or None when the policy does not apply to it."""
        variant = next((v for v in self.variants if _matches(v, resource)), None)
        if variant is None:
            return None
        if not _in_namespace_scope(self.namespace_selector, resource, context_resources):
            return None
        env = _environment(resource, context_resources)
        try:
            for name, expr in variant.conditions:
                if _run(expr, env, f"matchCondition {name}") is False:
                    return None
            variables: dict[str, Any] = {}
            env.add_variable("variables", variables)
            for name, expr in variant.variables:
                variables[name] = _run(expr, env, f"variable {name}")
                env.add_variable("variables", variables)
            failed: list[int] = []
            messages: list[str] = []
            for index, (expr, static_message, message_expr) in enumerate(variant.validations):
                if _run(expr, env, f"validations[{index}]") is not True:
                    failed.append(index)
                    message = static_message
                    if message_expr is not None:
                        message = str(
                            _run(message_expr, env, f"validations[{index}].messageExpression")
                        )
                    messages.append(message)
        except PolicyError as error:
            return Outcome("error", detail=str(error))
        for exception in exceptions:
            if self.name in exception.policies and _exception_applies(exception, env):
                return Outcome("skip", tuple(failed), tuple(messages), detail=exception.name)
        if failed:
            return Outcome("fail", tuple(failed), tuple(messages))
        return Outcome("pass")


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in `path`."""
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def plural(kind: str) -> str:
    """The API resource name of `kind` (lower-case plural)."""
    return _PLURALS.get(kind, kind.lower() + "s")


def autogen_rewrite(text: str, replacements: str) -> str:
    """Rewrite `object.spec`/`object.metadata` (and oldObject) the way Kyverno's autogen does."""
    for source, target in _REPLACEMENTS[replacements]:
        for root in ("object.", "oldObject."):
            pattern = re.compile(
                r"(?<![A-Za-z0-9_])" + re.escape(root + source) + r"(?![A-Za-z0-9_])"
            )
            text = pattern.sub(functools.partial(_swap, root + target), text)
    return text


def _swap(new: str, match: re.Match[str]) -> str:
    """Kyverno leaves `.name` and `.namespace` of the controller itself alone."""
    return match.group(0) if _PROTECTED.match(match.string, match.end()) else new


def compile_policy(document: Mapping[str, Any]) -> CompiledPolicy:
    """Compile a ValidatingPolicy document and its autogen variants."""
    name = str(document.get("metadata", {}).get("name", "<unnamed>"))
    if document.get("apiVersion") != POLICY_API or document.get("kind") != "ValidatingPolicy":
        raise PolicyError(f"{name}: expected {POLICY_API} ValidatingPolicy")
    spec = document.get("spec") or {}
    if not spec.get("validations"):
        raise PolicyError(f"{name}: spec.validations is empty")
    match = spec.get("matchConstraints") or {}
    selector = match.get("objectSelector") or {}
    if selector.get("matchLabels") or selector.get("matchExpressions"):
        raise PolicyError(f"{name}: objectSelector is not evaluated offline; use matchConditions")
    namespace_selector = dict(match.get("namespaceSelector") or {})
    try:
        selector_matches(namespace_selector, {})
    except ValueError as error:
        raise PolicyError(f"{name}: namespaceSelector: {error}") from error
    policy = CompiledPolicy(name, len(spec["validations"]), (), namespace_selector)
    policy.variants.append(_compile_variant(name, name, spec, match.get("resourceRules") or []))
    controllers = _autogen_controllers(spec)
    policy.autogen_kinds = tuple(sorted(AUTOGEN_CONTROLLERS[c][2] for c in controllers))
    for replacements in ("defaults", "cronjobs"):
        targets = [c for c in controllers if (c == "cronjobs") == (replacements == "cronjobs")]
        if not targets:
            continue
        rewritten = json.loads(autogen_rewrite(json.dumps(spec), replacements))
        guard = " || ".join(
            sorted(
                f"(object.apiVersion == '{_api_version(c)}'"
                f" && object.kind == '{AUTOGEN_CONTROLLERS[c][2]}')"
                for c in targets
            )
        )
        rewritten["matchConditions"] = [
            {"name": f"autogen-{c['name']}", "expression": f"!({guard}) || ({c['expression']})"}
            for c in rewritten.get("matchConditions") or []
        ]
        rules = [
            {
                "apiGroups": [AUTOGEN_CONTROLLERS[c][0]],
                "apiVersions": [AUTOGEN_CONTROLLERS[c][1]],
                "resources": [c],
                "operations": ["CREATE", "UPDATE"],
            }
            for c in targets
        ]
        policy.variants.append(
            _compile_variant(name, f"autogen-{replacements}-{name}", rewritten, rules)
        )
    return policy


def load_exceptions(documents: Iterable[Mapping[str, Any]]) -> list[CompiledException]:
    """Compile every PolicyException among `documents`; each must say why it exists."""
    compiled = []
    for document in documents:
        if document.get("kind") != "PolicyException":
            continue
        name = str(document.get("metadata", {}).get("name", "<unnamed>"))
        if document.get("apiVersion") != POLICY_API:
            raise PolicyError(f"exception {name}: expected apiVersion {POLICY_API}")
        spec = document.get("spec") or {}
        refs = spec.get("policyRefs") or []
        if not refs or any(ref.get("kind") != "ValidatingPolicy" for ref in refs):
            raise PolicyError(f"exception {name}: policyRefs must name ValidatingPolicies")
        if not spec.get("matchConditions"):
            raise PolicyError(f"exception {name}: without matchConditions it exempts everything")
        annotations = document.get("metadata", {}).get("annotations") or {}
        reason = str(annotations.get("policies.kyverno.io/description", "")).strip()
        if not reason:
            raise PolicyError(
                f"exception {name}: metadata.annotations[policies.kyverno.io/description] "
                "must give the reason"
            )
        conditions = tuple(
            (c["name"], _compile(f"exception {name}", c["expression"]))
            for c in spec["matchConditions"]
        )
        compiled.append(
            CompiledException(name, frozenset(ref["name"] for ref in refs), conditions, reason)
        )
    return compiled


def _api_version(controller: str) -> str:
    group, version, _ = AUTOGEN_CONTROLLERS[controller]
    return f"{group}/{version}" if group else version


def _autogen_controllers(spec: Mapping[str, Any]) -> list[str]:
    """Kyverno's CanAutoGen: one rule on core/v1 pods, without selectors or exclusions."""
    match = spec.get("matchConstraints") or {}
    rules = match.get("resourceRules") or []
    if match.get("excludeResourceRules") or len(rules) != 1:
        return []
    rule = rules[0]
    if (
        rule.get("resourceNames")
        or rule.get("apiGroups") != [""]
        or rule.get("apiVersions") != ["v1"]
        or rule.get("resources") != ["pods"]
    ):
        return []
    configured = ((spec.get("autogen") or {}).get("podControllers") or {}).get("controllers")
    if configured is None:
        return sorted(AUTOGEN_CONTROLLERS)
    unknown = set(configured) - set(AUTOGEN_CONTROLLERS)
    if unknown:
        raise PolicyError(f"autogen.podControllers.controllers: unknown {sorted(unknown)}")
    return sorted(configured)


def _compile(owner: str, source: str) -> _Expr:
    try:
        return _Expr(source, cel.compile(source))
    except ValueError as error:
        raise PolicyError(f"{owner}: cannot compile {source!r}: {error}") from error


def _compile_variant(
    policy: str, name: str, spec: Mapping[str, Any], rules: Sequence[Mapping[str, Any]]
) -> _Variant:
    match = spec.get("matchConstraints") or {}
    validations = []
    for index, validation in enumerate(spec["validations"]):
        message_expr = validation.get("messageExpression")
        validations.append(
            (
                _compile(f"{policy} validations[{index}]", validation["expression"]),
                str(validation.get("message", f"validations[{index}] failed")).strip(),
                _compile(f"{policy} validations[{index}]", message_expr) if message_expr else None,
            )
        )
    return _Variant(
        name=name,
        rules=tuple(rules),
        excludes=tuple(match.get("excludeResourceRules") or []),
        variables=tuple(
            (v["name"], _compile(f"{policy} variable {v['name']}", v["expression"]))
            for v in spec.get("variables") or []
        ),
        conditions=tuple(
            (c["name"], _compile(f"{policy} matchCondition {c['name']}", c["expression"]))
            for c in spec.get("matchConditions") or []
        ),
        validations=tuple(validations),
    )


def _rule_matches(rule: Mapping[str, Any], resource: Mapping[str, Any]) -> bool:
    group, _, version = str(resource.get("apiVersion", "")).rpartition("/")

    def has(key: str, value: str) -> bool:
        values = rule.get(key) or []
        return "*" in values or value in values

    return (
        has("apiGroups", group)
        and has("apiVersions", version)
        and has("resources", plural(str(resource.get("kind", ""))))
        and has("operations", "CREATE")
    )


def _matches(variant: _Variant, resource: Mapping[str, Any]) -> bool:
    return any(_rule_matches(r, resource) for r in variant.rules) and not any(
        _rule_matches(r, resource) for r in variant.excludes
    )


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether `labels` meet a Kubernetes LabelSelector (an empty selector matches all)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if operator == "In":
            ok = key in labels and labels[key] in values
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            raise ValueError(f"unknown operator {operator!r} for key {key!r}")
        if not ok:
            return False
    return True


def namespace_labels(
    namespace: str, context_resources: Sequence[Mapping[str, Any]] = ()
) -> dict[str, str]:
    """The labels the API server sees on `namespace`: its own (when rendered) plus the name."""
    labels: dict[str, str] = {}
    for r in context_resources:
        meta = r.get("metadata") or {}
        if r.get("kind") == "Namespace" and meta.get("name") == namespace:
            labels.update(meta.get("labels") or {})
    labels["kubernetes.io/metadata.name"] = namespace
    return labels


def _in_namespace_scope(
    selector: Mapping[str, Any],
    resource: Mapping[str, Any],
    context_resources: Sequence[Mapping[str, Any]],
) -> bool:
    if not selector:
        return True
    metadata = resource.get("metadata") or {}
    if resource.get("kind") == "Namespace":
        labels = dict(metadata.get("labels") or {})
        labels["kubernetes.io/metadata.name"] = str(metadata.get("name", ""))
        return selector_matches(selector, labels)
    namespace = metadata.get("namespace")
    # A namespaceSelector never skips a cluster-scoped object (admission webhook semantics).
    if not namespace:
        return True
    return selector_matches(selector, namespace_labels(str(namespace), context_resources))


def _environment(
    resource: Mapping[str, Any], context_resources: Sequence[Mapping[str, Any]]
) -> cel.Context:
    metadata = resource.get("metadata") or {}
    group, _, version = str(resource.get("apiVersion", "")).rpartition("/")
    request = {
        "operation": "CREATE",
        "namespace": metadata.get("namespace", ""),
        "name": metadata.get("name", ""),
        "kind": {"group": group, "version": version, "kind": resource.get("kind", "")},
        "resource": {
            "group": group,
            "version": version,
            "resource": plural(str(resource.get("kind", ""))),
        },
        "userInfo": {"username": "kyverno-cel-test"},
    }

    def resource_list(api_version: str, resource_name: str, namespace: str) -> dict[str, Any]:
        items = [
            r
            for r in context_resources
            if r.get("apiVersion") == api_version
            and plural(str(r.get("kind", ""))) == resource_name
            and (not namespace or (r.get("metadata") or {}).get("namespace") == namespace)
        ]
        return {"items": items}

    return cel.Context(
        variables={"object": dict(resource), "oldObject": None, "request": request},
        functions={"resource.List": resource_list},
    )


def _run(expr: _Expr, env: cel.Context, what: str) -> Any:
    try:
        return expr.program.execute(env)
    except _EVAL_ERRORS as error:
        raise PolicyError(
            f"{what} {expr.source!r} raised {type(error).__name__}: {error}"
        ) from error


def _exception_applies(exception: CompiledException, env: cel.Context) -> bool:
    try:
        return all(
            _run(expr, env, f"exception {exception.name} {name}") is True
            for name, expr in exception.conditions
        )
    except PolicyError:
        return False
