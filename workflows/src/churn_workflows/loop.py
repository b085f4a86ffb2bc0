"""The loop in ``make demo``: capture, outcomes, monitor, retrain, shadow, compare, promote.

After the demo serves its model: start churn-api on that pin with capture into
SQLite (``.local/demo/predictions.db``, the embedded default), score a few
thousand customers from a shifted population whose churn also follows a
changed rule, post their outcomes (simulated, arriving weeks later) to
``POST /v1/feedback``, run the monitor step, which prints live quality and
drift, and, when it asks for a retrain, run the pipeline on its snapshot with
drift reported, gated against the model that serves.

A better model goes through the shadow before it serves, as on the platform:
the retrain pins it as the shadow (``pin-as shadow``: ``shadow.yaml`` on the
branch ``shadow/churn-model-<env>-v<N>``), which is merged in the demo's GitOps
clone as a reviewer would. churn-api then serves what that clone's
``model.yaml`` and ``shadow.yaml`` pin, so the challenger scores the captured
requests of a second shifted population (another seed) beside the model,
outcomes arrive again, and the monitor compares the two on the same labelled
traffic. Last, the shadow is proposed as the model (``pin-as model``): the
promotion branch ``promote/churn-model-<env>-v<N>``, left for review, whose
body carries the offline gate's evidence and the live shadow evidence read
back from the store.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from churn_contract import builtin_contract, feature_names

from churn_workflows import PipelineError
from churn_workflows.champion_challenger import ChampionChallenger
from churn_workflows.pin import Pin, parse_pin, parse_shadow_pin, pin_path
from churn_workflows.pipeline import PipelineConfig, PipelineResult, run_pipeline
from churn_workflows.steps.monitor import MonitorConfig, MonitorReport, run_monitor, summary_lines
from churn_workflows.steps.promote import Promotion, git, promote
from churn_workflows.steps.synthetic import generate
from churn_workflows.steps.validate import Thresholds

# The default contract's features: what the captured requests of the churn family hold.
FEATURES = feature_names(builtin_contract())

__all__ = ["LoopResult", "merge_as_reviewer", "pinned", "run_loop", "shifted_population"]

_BATCH = 1000
# The populations: the one the monitor flags, then the one the shadow is measured on.
_CAPTURE_SEED = 21
_SHADOW_SEED = 22
# Which customers' outcomes arrive (80 %), per population.
_OUTCOME_SEEDS = (5, 6)
_EVIDENCE_HEADING = "### Live shadow evidence"


@dataclass
class LoopResult:
    """One line per step for the demo's summary."""

    lines: list[str] = field(default_factory=list)
    monitor: MonitorReport | None = None
    retrain: PipelineResult | None = None
    store_url: str = ""
    comparison: ChampionChallenger | None = None
    promotion: Promotion | None = None


def shifted_population(rows: int, seed: int = _CAPTURE_SEED) -> pd.DataFrame:
    """Customers unlike the training data, whose churn follows a changed rule.

    Longer tenures and more month-to-month contracts (drift), and churn driven
    by the payment method and paperless billing more than by tenure (the world
    changed): the serving model's live quality drops, a retrained one can win.
    """
    frame = generate(rows, seed=seed, drift={"tenure": 1.0, "contract_type": 0.4})
    rng = np.random.default_rng(seed)
    logit = (
        -1.6
        + 2.4 * (frame["payment_method"] == "electronic-check")
        + 1.2 * frame["paperless_billing"]
        + 0.02 * (frame["monthly_charges"] - 60.0)
    )
    frame["churn"] = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit.to_numpy(dtype=float)))
    return frame


def _http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@contextlib.contextmanager
def _serving(env: dict[str, str], timeout: float = 90.0) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    executable = Path(sys.executable).with_name("churn-api")
    base = f"http://127.0.0.1:{port}"
    with subprocess.Popen(  # noqa: S603 - our own entry point
        [str(executable), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as server:
        try:
            deadline = time.monotonic() + timeout
            while True:
                if server.poll() is not None:
                    raise PipelineError(f"churn-api exited with {server.returncode}")
                with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
                    if _http("GET", f"{base}/readyz")[0] == 200:
                        break
                if time.monotonic() > deadline:
                    raise PipelineError(f"churn-api on {base} was not ready after {timeout:.0f}s")
                time.sleep(0.2)
            yield base
        finally:
            server.terminate()  # SIGTERM: the capture queue is flushed before exit
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def _metrics(base: str) -> dict[str, float]:
    """churn-api's unlabelled samples, by name (enough for the counters the loop waits on)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    samples = (line.split() for line in text.splitlines() if not line.startswith("#"))
    return {parts[0]: float(parts[1]) for parts in samples if len(parts) == 2}


def _wait_captured(base: str, rows: int, *, shadow: bool, timeout: float = 30.0) -> float:
    """Wait until ``rows`` captures are written (and, with a shadow, counted as scored by it
    or failed, which happens just after); return how many the shadow scored."""
    deadline = time.monotonic() + timeout
    while True:
        metrics = _metrics(base)
        written = metrics.get("churn_api_capture_written_total", 0.0)
        scored = metrics.get("churn_api_shadow_predictions_total", 0.0)
        failed = metrics.get("churn_api_shadow_errors_total", 0.0)
        if written >= rows and (not shadow or scored + failed >= rows):
            return scored
        if time.monotonic() > deadline:
            shadowed = f", {scored + failed:.0f} seen by the shadow" if shadow else ""
            raise PipelineError(f"only {written:.0f} of {rows} predictions were captured{shadowed}")
        time.sleep(0.2)


def _wait_shadow_loaded(base: str, version: str, timeout: float = 60.0) -> None:
    # Readiness never waits for the shadow, and rows flushed before it loads carry none.
    deadline = time.monotonic() + timeout
    while True:
        status, model = _http("GET", f"{base}/v1/model")
        shadow = model.get("shadow") if status == 200 and isinstance(model, dict) else None
        if shadow and shadow.get("ready"):
            return
        if shadow and shadow.get("reason") not in (None, "loading"):
            raise PipelineError(f"churn-api refused shadow version {version}: {shadow['reason']}")
        if time.monotonic() > deadline:
            raise PipelineError(f"shadow version {version} was not loaded after {timeout:.0f}s")
        time.sleep(0.2)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = ["customer_id", *FEATURES]
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame[columns].to_dict("records")
    ]


def _predict(base: str, population: pd.DataFrame) -> list[str]:
    """Score ``population`` in batches; the prediction ids, in its order."""
    ids: list[str] = []
    for start in range(0, len(population), _BATCH):
        chunk = _records(population.iloc[start : start + _BATCH])
        status, answer = _http("POST", f"{base}/v1/predict/batch", {"records": chunk})
        if status != 200:
            raise PipelineError(f"POST /v1/predict/batch answered {status}: {answer}")
        ids += [p["prediction_id"] for p in answer["predictions"]]
    return ids


def _outcomes(ids: list[str], population: pd.DataFrame, seed: int) -> list[dict[str, Any]]:
    """Outcomes arrive weeks later, and only for most customers."""
    known = np.random.default_rng(seed).random(len(ids)) < 0.8
    observed = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    return [
        {"prediction_id": pid, "churned": bool(churned), "observed_at": observed}
        for pid, churned, keep in zip(ids, population["churn"], known, strict=True)
        if keep
    ]


def _feedback(base: str, outcomes: list[dict[str, Any]]) -> int:
    """POST the outcomes; how many were recorded."""
    counts: dict[str, int] = {}
    for start in range(0, len(outcomes), _BATCH):
        batch = {"records": outcomes[start : start + _BATCH]}
        status, answer = _http("POST", f"{base}/v1/feedback", batch)
        if status != 202:
            raise PipelineError(f"POST /v1/feedback answered {status}: {answer}")
        for key, value in answer["counts"].items():
            counts[key] = counts.get(key, 0) + value
    return counts.get("recorded", 0)


def _env(pin: Pin, prefix: str = "") -> dict[str, str]:
    return {
        f"{prefix}MODEL_URI": pin.uri,
        f"{prefix}MODEL_SHA256": pin.sha256,
        f"{prefix}MODEL_VERSION": pin.version,
    }


def pinned(repo: Path, environment: str) -> tuple[Pin, Pin | None]:
    """The model and the shadow ``repo``'s checkout pins for ``environment``: what Argo CD syncs."""
    found = []
    for kind in ("model", "shadow"):
        path = repo / pin_path(environment, kind)
        try:
            found.append((path.read_text(), str(path)))
        except FileNotFoundError:
            raise PipelineError(
                f"{path} is missing: the GitOps clone has no {kind} pin (`make clean` "
                "starts the demo over with a fresh clone)"
            ) from None
    (model_text, model_where), (shadow_text, shadow_where) = found
    return parse_pin(model_text, model_where), parse_shadow_pin(shadow_text, shadow_where)


def merge_as_reviewer(
    repo: Path, promotion: Promotion, progress: Callable[[str], None] = print
) -> None:
    """Merge a local promotion branch into its target, checked out, as its reviewer would."""
    progress(f"merge      {promotion.branch} into {promotion.base} (as the reviewer would)")
    git(repo, "checkout", "--quiet", promotion.base)
    git(repo, "merge", "--quiet", "--no-ff", "-m", f"Merge {promotion.branch}", promotion.branch)


def run_loop(  # noqa: PLR0915 - one straight script, step after step
    *,
    pin: dict[str, str],
    store_path: Path,
    models_uri: str,
    data_uri: str,
    pipeline: Callable[[str, Thresholds], PipelineConfig],
    rows: int = 3000,
    shadow_rows: int = 2000,
    progress: Callable[[str], None] = print,
) -> LoopResult:
    """Capture, outcomes, monitor, retrain, then shadow, compare and promote a better model.

    ``pipeline`` builds the retrain's config; its ``repo`` is the GitOps clone the
    shadow is merged in and the pins are read from.
    """
    result = LoopResult()
    store_path.parent.mkdir(parents=True, exist_ok=True)
    for stale in store_path.parent.glob(store_path.name + "*"):
        stale.unlink()  # a fresh store each demo: the numbers below are this run's
    store_url = result.store_url = f"sqlite:///{store_path}"
    capture = {"CHURN_CAPTURE_URL": store_url, "CHURN_CAPTURE_FLUSH_SECONDS": "0.2"}
    monitor = MonitorConfig(
        store_url=store_url, models_uri=models_uri, data_uri=data_uri, min_labels=500
    )

    population = shifted_population(rows)
    progress(f"capture    churn-api version {pin['MODEL_VERSION']} scores {rows} shifted customers")
    with _serving({**pin, **capture}) as base:
        ids = _predict(base, population)
        result.lines.append(f"capture       {rows} predictions captured into {store_url}")
        outcomes = _outcomes(ids, population, _OUTCOME_SEEDS[0])
        _wait_captured(base, rows, shadow=False)  # feedback names captured predictions
        progress(f"feedback   POST /v1/feedback with {len(outcomes)} delayed outcomes")
        recorded = _feedback(base, outcomes)
        result.lines.append(
            f"feedback      {recorded} outcomes recorded "
            f"({rows - len(outcomes)} customers still without one)"
        )

    progress("monitor    live quality and drift against the model's training profile")
    report = run_monitor(monitor)
    result.monitor = report
    for line in summary_lines(report):
        progress(f"monitor    {line}")
    window = report.window.get(pin["MODEL_VERSION"], {})
    auc, psi = window.get("roc_auc"), window.get("max_feature_psi")
    result.lines.append(
        f"monitor       live ROC AUC {'n/a' if auc is None else f'{auc:.3f}'} on "
        f"{int(window.get('labelled') or 0)} labels, max feature PSI "
        f"{'n/a' if psi is None else f'{psi:.3f}'} ({report.seconds:.1f}s)"
    )
    if not report.retrain:
        result.lines.append("retrain       not asked: " + ("; ".join(report.reasons) or "all fine"))
        return result

    # A retrained model runs as the shadow first: it serves only once it has won live.
    config = replace(pipeline(report.snapshot_uri, Thresholds(drift="report")), pin_as="shadow")
    pinned(config.repo, config.environment)  # a clone without both pins stops before training
    progress(f"retrain    churn-train on {report.snapshot_uri} (drift reported, not refused)")
    result.lines.append(
        f"retrain       asked: {'; '.join(report.reasons)}; snapshot sha256 "
        f"{report.snapshot_sha256[:12]} ({report.snapshot_rows} rows)"
    )
    retrain = run_pipeline(config, progress=progress)
    result.retrain = retrain
    if retrain.evaluation is not None:
        running = retrain.evaluation.running_pin
        against = f"version {running['version']}" if running else "the floors alone"
        result.lines.append(f"gate          against {against}: {retrain.evaluation.decision}")
    proposal = retrain.promotion
    if proposal is None or retrain.evaluation is None or retrain.validation is None:
        result.lines.append(f"next          {retrain.outcome}")
        return result
    if proposal.kind == "pull-request":  # a real review: nothing to merge here
        result.lines.append(f"next          {proposal.message}, left for review")
        return result
    if proposal.kind == "local-branch":
        merge_as_reviewer(config.repo, proposal, progress)
        result.lines.append(
            f"shadow        {proposal.branch} merged into {proposal.base} of {config.repo}"
        )
    else:  # the clone already pins this model as the shadow
        result.lines.append(f"shadow        {proposal.message}")

    serving, shadow = pinned(config.repo, config.environment)
    if shadow is None:
        raise PipelineError(f"{pin_path(config.environment, 'shadow')} pins no shadow")
    population = shifted_population(shadow_rows, seed=_SHADOW_SEED)
    progress(
        f"shadow     churn-api version {serving.version} with version {shadow.version} as the "
        f"shadow (the clone's model.yaml and shadow.yaml) scores {shadow_rows} more customers"
    )
    with _serving({**_env(serving), **_env(shadow, "SHADOW_"), **capture}) as base:
        _wait_shadow_loaded(base, shadow.version)
        ids = _predict(base, population)
        outcomes = _outcomes(ids, population, _OUTCOME_SEEDS[1])
        scored = _wait_captured(base, shadow_rows, shadow=True)
        progress(f"feedback   POST /v1/feedback with {len(outcomes)} delayed outcomes")
        recorded = _feedback(base, outcomes)
    result.lines.append(
        f"serve         version {serving.version} with version {shadow.version} as the shadow: "
        f"{shadow_rows} predictions captured, {scored:.0f} scored by the shadow too, "
        f"{recorded} outcomes recorded"
    )

    progress("monitor    the serving model and its shadow on the same labelled traffic")
    report = run_monitor(monitor)
    for line in summary_lines(report):
        progress(f"monitor    {line}")
    result.comparison = next(
        (
            c
            for c in report.champion_challenger
            if (c.serving_version, c.shadow_version) == (serving.version, shadow.version)
        ),
        None,
    )
    result.lines.append(
        "compare       "
        + (
            result.comparison.summary()
            if result.comparison
            else f"no labelled predictions scored by version {shadow.version} as the shadow"
        )
    )

    # What a reviewer promotes is what ran as the shadow: the clone's shadow.yaml.
    progress(
        f"promote    overlays/{config.environment}/model.yaml: the shadow, version "
        f"{shadow.version}, with its live evidence from {store_url}"
    )
    offline = retrain.evaluation.to_markdown() + "\n" + retrain.validation.to_markdown()
    promotion = promote(
        config.environment,
        shadow,
        offline,
        repo=config.repo,
        base=config.base,
        pin_as="model",
        store_url=store_url,
    )
    result.promotion = promotion
    evidence = ""
    if promotion.kind == "local-branch":
        body = git(config.repo, "show", "--no-patch", "--format=%B", promotion.commit)
        live = _EVIDENCE_HEADING in body
        evidence = " with the live shadow evidence" if live else " without live shadow evidence"
    result.lines.append(
        f"promote       version {shadow.version}{evidence}: {promotion.message}, left for review"
    )
    return result
