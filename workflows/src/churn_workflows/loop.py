"""The loop in ``make demo``: capture, outcomes, monitor, and the retrain the monitor asks for.

After the demo serves its model: start churn-api on that pin with capture into
SQLite (``.local/demo/predictions.db``, the embedded default), score a few
thousand customers from a shifted population whose churn also follows a
changed rule, post their outcomes (simulated, arriving weeks later) to
``POST /v1/feedback``, run the monitor step, which prints live quality and
drift, and, when it asks for a retrain, run the pipeline on its snapshot with
drift reported, gated against the model that serves. A better model becomes
the next promotion branch in the demo's GitOps clone, left for review.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from churn_contract import builtin_contract, feature_names

from churn_workflows import PipelineError
from churn_workflows.pipeline import PipelineConfig, PipelineResult, run_pipeline
from churn_workflows.steps.monitor import MonitorConfig, MonitorReport, run_monitor, summary_lines
from churn_workflows.steps.synthetic import generate
from churn_workflows.steps.validate import Thresholds

# The default contract's features: what the captured requests of the churn family hold.
FEATURES = feature_names(builtin_contract())

__all__ = ["LoopResult", "run_loop", "shifted_population"]

_BATCH = 1000


@dataclass
class LoopResult:
    """One line per step for the demo's summary."""

    lines: list[str] = field(default_factory=list)
    monitor: MonitorReport | None = None
    retrain: PipelineResult | None = None


def shifted_population(rows: int, seed: int = 21) -> pd.DataFrame:
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


def _wait_captured(base: str, rows: int, timeout: float = 30.0) -> None:
    # Feedback names captured predictions: wait until the queue has reached the store.
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:  # noqa: S310
            text = response.read().decode()
        written = next(
            (float(line.split()[-1]) for line in text.splitlines()
             if line.startswith("churn_api_capture_written_total ")),
            0.0,
        )  # fmt: skip
        if written >= rows:
            return
        if time.monotonic() > deadline:
            raise PipelineError(f"only {written:.0f} of {rows} predictions were captured")
        time.sleep(0.2)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = ["customer_id", *FEATURES]
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame[columns].to_dict("records")
    ]


def run_loop(
    *,
    pin: dict[str, str],
    store_path: Path,
    models_uri: str,
    data_uri: str,
    pipeline: Callable[[str, Thresholds], PipelineConfig],
    rows: int = 3000,
    progress: Callable[[str], None] = print,
) -> LoopResult:
    """Capture, outcomes, monitor, retrain; ``pipeline`` builds the retrain's config."""
    result = LoopResult()
    store_path.parent.mkdir(parents=True, exist_ok=True)
    for stale in store_path.parent.glob(store_path.name + "*"):
        stale.unlink()  # a fresh store each demo: the numbers below are this run's
    store_url = f"sqlite:///{store_path}"
    population = shifted_population(rows)
    env = {**pin, "CHURN_CAPTURE_URL": store_url, "CHURN_CAPTURE_FLUSH_SECONDS": "0.2"}

    progress(f"capture    churn-api version {pin['MODEL_VERSION']} scores {rows} shifted customers")
    with _serving(env) as base:
        ids: list[str] = []
        for start in range(0, rows, _BATCH):
            chunk = _records(population.iloc[start : start + _BATCH])
            status, answer = _http("POST", f"{base}/v1/predict/batch", {"records": chunk})
            if status != 200:
                raise PipelineError(f"POST /v1/predict/batch answered {status}: {answer}")
            ids += [p["prediction_id"] for p in answer["predictions"]]
        result.lines.append(f"capture       {rows} predictions captured into {store_url}")

        # Outcomes arrive weeks later, and only for most customers.
        known = np.random.default_rng(5).random(rows) < 0.8
        observed = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        outcomes = [
            {"prediction_id": pid, "churned": bool(churned), "observed_at": observed}
            for pid, churned, keep in zip(ids, population["churn"], known, strict=True)
            if keep
        ]
        _wait_captured(base, rows)
        progress(f"feedback   POST /v1/feedback with {len(outcomes)} delayed outcomes")
        counts: dict[str, int] = {}
        for start in range(0, len(outcomes), _BATCH):
            batch = {"records": outcomes[start : start + _BATCH]}
            status, answer = _http("POST", f"{base}/v1/feedback", batch)
            if status != 202:
                raise PipelineError(f"POST /v1/feedback answered {status}: {answer}")
            for key, value in answer["counts"].items():
                counts[key] = counts.get(key, 0) + value
        result.lines.append(
            f"feedback      {counts.get('recorded', 0)} outcomes recorded "
            f"({rows - len(outcomes)} customers still without one)"
        )

    progress("monitor    live quality and drift against the model's training profile")
    report = run_monitor(
        MonitorConfig(store_url=store_url, models_uri=models_uri, data_uri=data_uri, min_labels=500)
    )
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

    progress(f"retrain    churn-train on {report.snapshot_uri} (drift reported, not refused)")
    result.lines.append(
        f"retrain       asked: {'; '.join(report.reasons)}; snapshot sha256 "
        f"{report.snapshot_sha256[:12]} ({report.snapshot_rows} rows)"
    )
    retrain = run_pipeline(
        pipeline(report.snapshot_uri, Thresholds(drift="report")), progress=progress
    )
    result.retrain = retrain
    if retrain.evaluation is not None:
        running = retrain.evaluation.running_pin
        against = f"version {running['version']}" if running else "the floors alone"
        result.lines.append(f"gate          against {against}: {retrain.evaluation.decision}")
    if retrain.promotion is not None:
        result.lines.append(f"next          {retrain.promotion.message}, left for review")
    else:
        result.lines.append(f"next          {retrain.outcome}")
    return result
