"""``make demo``: the whole pipeline on this machine, then the promoted model served.

Steps: write a synthetic dataset and a reference under ``.local/demo/`` (or
take ``--data`` and its ``--contract``, with no drift reference), run the
pipeline in-process (MLflow on SQLite at ``.local/mlflow/mlflow.db``, the
models bucket at ``.local/bucket/``), propose the promotion as a local branch
in the demo's own GitOps clone (``.local/gitops``, cloned once from this
repository's HEAD) and merge it there as a reviewer would, so the next demo
compares against this model. Then start churn-api on a free localhost port
with the promoted pin, send one prediction (a fixed customer for the synthetic
data, the first holdout customer for ``--data``), stop it, and print a summary.
``.local/last-promoted.json`` keeps the pin for ``make serve``. On the synthetic
data the loop follows (churn_workflows.loop): capture, outcomes, monitor, a
retrain run as the shadow, its live comparison, and its promotion.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from churn_contract import ID_COLUMN, Contract

from churn_workflows import PipelineError
from churn_workflows.contracts import load_contract
from churn_workflows.loop import LoopResult, merge_as_reviewer, run_loop
from churn_workflows.pipeline import PipelineConfig, PipelineResult, run_pipeline
from churn_workflows.steps.evaluate import GateConfig
from churn_workflows.steps.ingest import write_dataset
from churn_workflows.steps.promote import git
from churn_workflows.steps.synthetic import generate
from churn_workflows.steps.train import split
from churn_workflows.steps.validate import Thresholds

__all__ = ["SAMPLE", "main", "predict_once", "prepare_gitops", "sample_record"]

SAMPLE: dict[str, Any] = {
    "customer_id": "demo-0001",
    "tenure": 3,
    "monthly_charges": 89.5,
    "contract_type": "month-to-month",
    "support_tickets": 4,
    "internet_service": "fiber-optic",
    "payment_method": "electronic-check",
    "paperless_billing": True,
    "senior_citizen": False,
}


def sample_record(conformed: pd.DataFrame, contract: Contract) -> dict[str, Any]:
    """The first holdout customer of ``conformed`` as a request body, in the contract's fields."""
    holdout = split(conformed).holdout
    row = (holdout if len(holdout) else conformed).iloc[0]
    record: dict[str, Any] = {ID_COLUMN: str(row[ID_COLUMN])}
    for name, feature in contract.features.items():
        value = row[name]
        if feature.type == "category":
            record[name] = str(value)
        elif feature.type == "bool":
            record[name] = bool(value)
        else:
            record[name] = int(value) if feature.type == "int" else float(value)
    return record


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def repo_root() -> Path:
    """The working repository's top level (the current directory outside git)."""
    try:
        return Path(git(Path.cwd(), "rev-parse", "--show-toplevel"))
    except PipelineError:
        return Path.cwd()


def prepare_gitops(root: Path, clone: Path) -> Path:
    """The demo's GitOps repository: cloned once from ``root``'s HEAD, then kept."""
    if not (clone / ".git").is_dir():
        clone.parent.mkdir(parents=True, exist_ok=True)
        git(root, "clone", "--quiet", "--no-hardlinks", str(root), str(clone))
    return clone


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def predict_once(pin: dict[str, str], record: dict[str, Any], timeout: float = 90.0) -> Any:
    """Serve ``pin`` with churn-api on a free port, wait for /readyz, POST one prediction."""
    executable = Path(sys.executable).with_name("churn-api")
    if not executable.exists():
        raise PipelineError(f"{executable}: churn-api is not installed (run `make setup`)")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, **pin}
    with subprocess.Popen(  # noqa: S603 - our own entry point
        [str(executable), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as server:
        try:
            deadline = time.monotonic() + timeout
            while True:
                if server.poll() is not None:
                    output = server.stdout.read() if server.stdout else ""
                    raise PipelineError(
                        f"churn-api exited with {server.returncode}:\n{output[-2000:]}"
                    )
                try:
                    if _http("GET", f"{base}/readyz")[0] == 200:
                        break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise PipelineError(f"churn-api on {base} was not ready after {timeout:.0f}s")
                time.sleep(0.3)
            status, answer = _http("POST", f"{base}/v1/predict", record)
            if status != 200:
                raise PipelineError(f"POST {base}/v1/predict answered {status}: {answer}")
            return answer
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def _summary(result: PipelineResult, prediction: Any, clone: Path) -> str:
    lines = ["", "== churn pipeline: summary =="]
    lines.append(f"rows          {result.rows} (data sha256 {result.data_sha256[:12]})")
    if result.validation:
        lines.append(f"validation    {result.validation.summary()}")
    evaluation = result.evaluation
    if evaluation:
        c = evaluation.candidate
        lines.append(
            f"candidate     {c['name']}: ROC AUC {c['roc_auc']:.4f}, PR AUC {c['pr_auc']:.4f}, "
            f"F1 {c['f1']:.4f} at {c['threshold']:.3f}, Brier {c['brier']:.4f}"
        )
        if evaluation.running and evaluation.running_pin:
            r = evaluation.running
            lines.append(
                f"running       version {evaluation.running_pin['version']}: "
                f"ROC AUC {r['roc_auc']:.4f}, "
                f"PR AUC {r['pr_auc']:.4f}, F1 {r['f1']:.4f}, Brier {r['brier']:.4f}"
            )
        else:
            lines.append("running       none (bootstrap pin): gated on the floors alone")
        lines.append(
            "gate          "
            + (
                evaluation.decision
                if evaluation.passed or evaluation.unchanged
                else "FAILED: " + "; ".join(evaluation.reasons)
            )
        )
    if result.registered:
        reg = result.registered
        lines.append(f"model         churn-model version {reg.version} (alias challenger)")
        lines.append(f"sha256        {reg.sha256}")
        lines.append(f"artifact      {reg.uri}")
    if result.promotion:
        lines.append(
            f"promotion     {result.promotion.message}; "
            f"merged into {result.promotion.base} of {clone}"
        )
    else:  # the promotion line already says what happened when there is one
        lines.append(f"outcome       {result.outcome}")
    if prediction is not None:
        lines.append(f"prediction    {json.dumps(prediction, sort_keys=True)}")
    return "\n".join(lines)


def _loop(local: Path, config: PipelineConfig) -> LoopResult | None:
    # The loop's shifted population is the built-in churn contract's synthetic data.
    served = local / "last-promoted.json"
    if not served.is_file():
        return None
    return run_loop(
        pin=json.loads(served.read_text()),
        store_path=local / "demo" / "predictions.db",
        models_uri=config.bucket_uri,
        data_uri=(local / "bucket" / f"churn-{config.environment}-data").as_uri(),
        pipeline=lambda uri, limits: replace(
            config, data_uri=uri, thresholds=limits, report_dir=local / "demo" / "loop"
        ),
        progress=_say,
    )


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0915 - one straight script
    """Run the demo; exit 1 with the reason on any refusal."""
    parser = argparse.ArgumentParser(prog="churn-workflows demo", description=__doc__)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--environment", default="dev", choices=("dev", "staging", "prod"))
    parser.add_argument("--drift", action="append", default=[], metavar="FEATURE=STRENGTH")
    parser.add_argument("--min-improvement", type=float, default=GateConfig.min_improvement)
    parser.add_argument("--max-psi", type=float, default=Thresholds.max_psi)
    parser.add_argument("--no-serve", action="store_true", help="skip serving and the prediction")
    parser.add_argument("--data", help="a .csv or .parquet file or URI (default: synthetic data)")
    parser.add_argument(
        "--contract", default="churn", help="a built-in contract name or a YAML file (with --data)"
    )
    parser.add_argument("--no-loop", action="store_true", help="skip capture, monitor and retrain")
    args = parser.parse_args(argv)

    # The demo's artifacts are file:// URIs on this machine: never propose them to GitHub.
    credentials = ["GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_APP_ID"]
    credentials += ["GITHUB_APP_INSTALLATION_ID", "GITHUB_APP_PRIVATE_KEY"]
    if [var for var in credentials if os.environ.pop(var, None)]:
        _say("note       GITHUB_TOKEN/GITHUB_REPOSITORY ignored: the demo promotes locally")
    root = repo_root()
    local = root / ".local"
    data_dir = local / "demo" / "data"
    try:
        drift = {k: float(v) for k, v in (item.split("=", 1) for item in args.drift)}
        contract = load_contract(args.contract)
        reference_uri: str | None
        if args.data:
            data_uri = args.data if "://" in args.data else Path(args.data).resolve().as_uri()
            reference_uri = None
            _say(f"data       {data_uri} with the contract {contract.name!r}; no drift reference")
        else:
            data_uri = (data_dir / "customers.parquet").as_uri()
            reference_uri = (data_dir / "reference.parquet").as_uri()
            _say(f"generate   {args.rows} synthetic customers (seed 7) and a reference (seed 11)")
            write_dataset(generate(args.rows, seed=7, drift=drift), data_uri)
            write_dataset(generate(max(args.rows // 2, 1000), seed=11), reference_uri)
        clone = prepare_gitops(root, local / "gitops")
        config = PipelineConfig(
            data_uri=data_uri,
            reference_uri=reference_uri,
            environment=args.environment,
            tracking_uri=f"sqlite:///{local / 'mlflow' / 'mlflow.db'}",
            artifact_location=(local / "mlflow" / "artifacts").as_uri(),
            bucket_uri=(local / "bucket" / f"churn-{args.environment}-models").as_uri(),
            repo=clone,
            report_dir=local / "demo" / "reports",
            thresholds=Thresholds(max_psi=args.max_psi),
            gate=GateConfig(min_improvement=args.min_improvement),
            contract=contract,
        )
        result = run_pipeline(config, progress=_say)
        prediction = None
        if result.promotion is not None and result.registered is not None:
            if result.promotion.kind == "local-branch":
                merge_as_reviewer(clone, result.promotion, _say)
            pin = {
                "MODEL_URI": result.registered.uri,
                "MODEL_SHA256": result.registered.sha256,
                "MODEL_VERSION": result.registered.version,
            }
            (local / "last-promoted.json").write_text(json.dumps(pin, indent=2) + "\n")
            if not args.no_serve:
                _say("serve      churn-api with the promoted pin; POST /v1/predict")
                conformed = result.validation.conformed if result.validation else None
                record = (
                    sample_record(conformed, contract)
                    if args.data and conformed is not None
                    else SAMPLE
                )
                _say(f"request    {json.dumps(record, sort_keys=True)}")
                prediction = predict_once(pin, record)
        loop = None if args.no_serve or args.no_loop or args.data else _loop(local, config)
    except PipelineError as exc:
        print(f"\nchurn-workflows demo: {exc}", file=sys.stderr)
        return 1
    print(_summary(result, prediction, clone))
    if loop is not None:
        heading = "== the loop: capture, outcomes, monitor, retrain, shadow, promote =="
        print("\n".join(["", heading, *loop.lines]))
    return 0
