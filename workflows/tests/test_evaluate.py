"""Evaluate and gate: ONNX metrics per segment, the running model on the same holdout, the gate."""

from __future__ import annotations

import http.server
import json
import re
import threading
from dataclasses import replace
from pathlib import Path

import msgspec
import numpy as np
import onnx
import pandas as pd
import pytest
from churn_contract import CONTRACT_METADATA_KEY, builtin_contract
from churn_workflows import PipelineError
from churn_workflows.lineage import contract_sha256
from churn_workflows.pin import BOOTSTRAP_SHA256, Pin, pin_path
from churn_workflows.steps.evaluate import (
    GateConfig,
    comparison_reasons,
    contract_digest,
    evaluate,
    floor_reasons,
    main,
    paired_auc_delta,
    resolve_baseline,
    score,
    segment_reasons,
    select_best,
)
from churn_workflows.steps.export import export_onnx, sha256, stamp
from churn_workflows.steps.ingest import write_dataset
from churn_workflows.steps.publish import publish_artifact
from churn_workflows.steps.train import (
    build_pipeline,
    candidates,
    model_frame,
    split,
    train_candidate,
)
from sklearn.metrics import roc_auc_score

BOOTSTRAP = Pin(
    "s3://churn-dev-models/churn-model/sha256/" + BOOTSTRAP_SHA256 + ".onnx", BOOTSTRAP_SHA256, "0"
)


@pytest.fixture(scope="module")
def artifacts(frame: pd.DataFrame) -> dict[str, bytes]:
    """A good model and a weak one (trained on a shuffled label), as ONNX."""
    parts = split(frame)
    good = build_pipeline(candidates()[1]).fit(model_frame(parts.train), parts.train["churn"])
    shuffled = parts.train["churn"].sample(frac=1.0, random_state=3).to_numpy()
    weak = build_pipeline(candidates()[0]).fit(model_frame(parts.train), shuffled)
    return {
        "good": export_onnx(good, {"churn.threshold": "0.35"}),
        "weak": export_onnx(weak, {"churn.threshold": "0.35"}),
    }


def test_metrics_come_from_the_onnx_artifact_overall_and_per_contract_type(
    artifacts: dict[str, bytes], frame: pd.DataFrame
) -> None:
    result = score(artifacts["good"], split(frame).holdout)
    assert 0.7 < result["roc_auc"] < 1.0
    assert 0 < result["brier"] < 0.25
    assert result["threshold"] == 0.35
    assert set(result["segments"]) == {"month-to-month", "one-year", "two-year"}
    assert sum(s["rows"] for s in result["segments"].values()) == result["rows"]


def test_without_a_running_model_the_floors_decide(
    artifacts: dict[str, bytes], frame: pd.DataFrame
) -> None:
    holdout = split(frame).holdout
    passed = evaluate(artifacts["good"], holdout, running_pin=BOOTSTRAP, gate=GateConfig())
    assert passed.passed
    assert passed.running is None
    assert passed.comparison is None
    assert "none (the Git pin)" in passed.to_markdown()
    failed = evaluate(artifacts["weak"], holdout, running_pin=BOOTSTRAP, gate=GateConfig())
    assert not failed.passed
    assert failed.reasons[0].startswith("ROC AUC 0.")
    assert "below the floor 0.7" in failed.reasons[0]


def _published(tmp_path: Path, artifact: bytes, version: str = "1") -> Pin:
    return Pin(publish_artifact(artifact, tmp_path.as_uri()), sha256(artifact), version)


def test_an_artifact_that_already_serves_is_unchanged(
    tmp_path: Path, artifacts: dict[str, bytes], frame: pd.DataFrame
) -> None:
    running = _published(tmp_path, artifacts["good"])
    same = evaluate(artifacts["good"], split(frame).holdout, running_pin=running, gate=GateConfig())
    assert same.unchanged
    assert not same.passed
    assert same.decision == "unchanged"
    assert same.reasons == [f"unchanged: {running.sha256} already serves in dev"]


def test_a_tie_does_not_promote(
    tmp_path: Path, artifacts: dict[str, bytes], frame: pd.DataFrame
) -> None:
    # The same scores under another digest (another threshold): the gain is exactly zero.
    twin = stamp(artifacts["good"], {"churn.threshold": "0.5"})
    result = evaluate(
        twin,
        split(frame).holdout,
        running_pin=_published(tmp_path, artifacts["good"]),
        gate=GateConfig(),
    )
    assert not result.unchanged
    assert result.comparison is not None
    assert result.comparison["delta"] == 0.0
    assert (result.comparison["low"], result.comparison["high"]) == (0.0, 0.0)
    assert len(result.reasons) == 1
    assert result.reasons[0].startswith("ROC AUC gain over serving version 1 is +0.0000, 95% CI")
    assert "its lower bound is not above 0.0" in result.reasons[0]


def test_a_gain_within_the_noise_does_not_promote() -> None:
    rng = np.random.default_rng(5)
    labels = rng.random(2000) < 0.3
    running = 0.3 + 0.2 * labels + rng.normal(0, 0.2, 2000)
    # The same scores plus noise: on this seed the noise happens to help.
    candidate = running + rng.normal(0, 0.05, 2000)
    comparison = paired_auc_delta(labels, candidate, running)
    # A point gain, which a bare "gain >= 0" rule would promote, inside a CI around zero.
    assert comparison["delta"] > 0
    assert comparison["low"] < 0 < comparison["high"]
    assert comparison_reasons(comparison, "3", GateConfig())
    clearly = paired_auc_delta(labels, running + 0.1 * labels, running)
    assert clearly["low"] > 0
    assert comparison_reasons(clearly, "3", GateConfig()) == []


def test_the_delong_interval_matches_the_auc_difference_and_a_bootstrap() -> None:
    rng = np.random.default_rng(11)
    labels = rng.random(1500) < 0.26
    a = labels * 0.8 + rng.normal(0, 0.5, 1500)
    b = labels * 0.6 + rng.normal(0, 0.5, 1500) + 0.3 * a
    comparison = paired_auc_delta(labels, a, b)
    assert comparison["delta"] == pytest.approx(roc_auc_score(labels, a) - roc_auc_score(labels, b))
    deltas = []
    for _ in range(300):
        i = rng.integers(0, 1500, 1500)
        deltas.append(roc_auc_score(labels[i], a[i]) - roc_auc_score(labels[i], b[i]))
    assert comparison["se"] == pytest.approx(float(np.std(deltas)), rel=0.2)
    assert comparison["rows"] == 1500
    assert comparison["positives"] == labels.sum()


def _metrics(base_rate: float, pr_auc: float, brier: float) -> dict[str, float]:
    return {"base_rate": base_rate, "roc_auc": 0.8, "pr_auc": pr_auc, "brier": brier}


def test_the_floors_respect_the_base_rate() -> None:
    gate = GateConfig()
    # At 26 % churn, predicting 0.26 for everyone scores Brier 0.1924: 0.21 is worse than that.
    (brier,) = floor_reasons(_metrics(0.26, 0.6, 0.21), gate)
    assert brier.startswith("Brier score 0.2100 above 0.1828")
    assert "predicting the base rate (Brier 0.1924)" in brier
    # At 5 % churn, a PR AUC of 0.20 is four times a random ranking's: it passes.
    assert floor_reasons(_metrics(0.05, 0.20, 0.04), gate) == []
    (pr,) = floor_reasons(_metrics(0.05, 0.055, 0.04), gate)
    assert pr == "PR AUC 0.0550 below 1.25 x the base rate 0.0500 (= 0.0625)"
    assert floor_reasons(_metrics(0.26, 0.6, float("nan")), gate)


def _segments(**aucs: tuple[float, int]) -> dict[str, object]:
    return {"segments": {k: {"roc_auc": auc, "rows": rows} for k, (auc, rows) in aucs.items()}}


def test_no_segment_may_regress_beyond_the_tolerance() -> None:
    gate = GateConfig()
    served = _segments(a=(0.80, 500), b=(0.75, 500), c=(0.90, 50))
    better_overall = _segments(a=(0.86, 500), b=(0.72, 500), c=(0.60, 50))
    (reason,) = segment_reasons(better_overall, served, gate)
    assert reason.startswith("ROC AUC on contract_type=b (n = 500) falls 0.0300 (0.7500 -> 0.7200)")
    # Segment c is too small to gate; within the tolerance is fine.
    assert segment_reasons(_segments(a=(0.86, 500), b=(0.74, 500)), served, gate) == []
    assert segment_reasons(better_overall, served, replace(gate, max_segment_drop=0.05)) == []


def test_a_better_candidate_passes_with_the_evidence_table(
    tmp_path: Path, artifacts: dict[str, bytes], frame: pd.DataFrame
) -> None:
    holdout = split(frame).holdout
    better = evaluate(
        artifacts["good"],
        holdout,
        running_pin=_published(tmp_path, artifacts["weak"]),
        gate=GateConfig(),
        data_sha256="d" * 64,
        reference_sha256="e" * 64,
        baseline_source="the Git pin platform/apps/churn-api/overlays/dev/model.yaml",
    )
    assert better.passed, better.reasons
    assert better.comparison is not None
    assert better.comparison["low"] > 0
    table = better.to_markdown()
    assert "read from the Git pin platform/apps/churn-api/overlays/dev/model.yaml" in table
    assert "| metric | serving | candidate | delta | 95% CI (paired DeLong) |" in table
    low, high = better.comparison["low"], better.comparison["high"]
    assert f"[{low:+.4f}, {high:+.4f}]" in table
    assert f"n = {len(holdout)} rows" in table
    assert re.search(r"\| roc_auc\[contract_type=two-year\] \(n = \d+\) \| 0\.\d{4} \|", table)
    assert "data sha256 `" + "d" * 64 in table
    assert "reference sha256 `" + "e" * 64 in table


def test_a_serving_model_under_another_contract_is_gated_on_the_floors_alone(
    tmp_path: Path, artifacts: dict[str, bytes], frame: pd.DataFrame
) -> None:
    holdout = split(frame).holdout
    serving = _published(tmp_path, artifacts["good"])
    # The same model again: compared with itself it is a tie, which never promotes.
    same = stamp(artifacts["good"], {"churn.threshold": "0.36"})
    tie = evaluate(same, holdout, running_pin=serving, gate=GateConfig())
    assert tie.note is None
    assert tie.comparison is not None
    assert tie.serving_contract_sha256 == tie.candidate_contract_sha256 == contract_sha256()
    assert not tie.passed
    assert any("ROC AUC gain over serving version" in r for r in tie.reasons), tie.reasons
    # Under a changed contract the serving model is not scored: the floors decide, and say so.
    changed = msgspec.structs.replace(builtin_contract(), name="churn-next")
    candidate = stamp(artifacts["good"], {"churn.threshold": "0.36"}, changed)
    floors = evaluate(candidate, holdout, running_pin=serving, gate=GateConfig())
    assert floors.passed, floors.reasons
    assert floors.comparison is None
    assert floors.running is None
    assert (floors.serving_contract_sha256, floors.candidate_contract_sha256) == (
        contract_sha256(),
        contract_sha256(changed),
    )
    message = (
        f"serving model uses contract `{contract_sha256()[:12]}`, candidate "
        f"`{contract_sha256(changed)[:12]}`: compared on floors only"
    )
    assert floors.note == message
    assert message in floors.to_markdown()
    assert floors.to_dict()["serving_contract_sha256"] == contract_sha256()
    # The floors still refuse what they refuse.
    strict = evaluate(candidate, holdout, running_pin=serving, gate=GateConfig(min_roc_auc=0.99))
    assert [r for r in strict.reasons if "ROC AUC" in r] == [
        f"ROC AUC {strict.candidate['roc_auc']:.4f} below the floor 0.99"
    ]


def test_a_serving_model_that_embeds_no_contract_is_gated_on_the_floors_alone(
    tmp_path: Path, artifacts: dict[str, bytes], frame: pd.DataFrame
) -> None:
    model = onnx.load_from_string(artifacts["weak"])
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != CONTRACT_METADATA_KEY]
    del model.metadata_props[:]
    for key, value in kept:
        model.metadata_props.add(key=key, value=value)
    bare = model.SerializeToString()
    assert contract_digest(bare) is None
    result = evaluate(
        artifacts["good"],
        split(frame).holdout,
        running_pin=_published(tmp_path, bare),
        gate=GateConfig(),
    )
    assert result.passed, result.reasons
    assert result.note is not None
    assert result.note.startswith("serving model uses contract `none embedded`, candidate `")


class _FakeServing(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/v1/model" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_baseline_is_what_serves_when_a_url_is_given(gitops: Path) -> None:
    served = {"version": "7", "sha256": "a" * 64, "uri": "s3://b/churn-model/sha256/x.onnx"}
    handler = type("Handler", (_FakeServing,), {"body": json.dumps(served).encode()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        baseline = resolve_baseline("dev", serving_url=url, repo=gitops)
    finally:
        server.shutdown()
        server.server_close()
    assert baseline.pin == Pin(served["uri"], served["sha256"], "7")
    assert baseline.source == f"the serving churn-api at {url}"
    # Without a URL, or when the service does not answer, the Git pin; the source says which.
    assert resolve_baseline("dev", repo=gitops).source == f"the Git pin {pin_path('dev')}"
    fallback = resolve_baseline("dev", serving_url=url, repo=gitops)
    assert fallback.pin.is_bootstrap
    assert fallback.source.startswith(f"the Git pin {pin_path('dev')} (the serving churn-api")


def test_a_running_artifact_with_another_digest_is_refused(
    tmp_path: Path, artifacts: dict[str, bytes], frame: pd.DataFrame
) -> None:
    uri = publish_artifact(artifacts["weak"], tmp_path.as_uri())
    with pytest.raises(PipelineError, match="differs from the pinned " + "c" * 64):
        evaluate(
            artifacts["good"],
            split(frame).holdout,
            running_pin=Pin(uri, "c" * 64, "2"),
            gate=GateConfig(),
        )


def test_the_best_candidate_is_chosen_on_validation() -> None:
    runs = [
        {"name": "a", "run_id": "1", "valid_roc_auc": 0.8},
        {"name": "b", "run_id": "2", "valid_roc_auc": 0.85},
    ]
    assert select_best(runs)["name"] == "b"
    with pytest.raises(PipelineError, match="no candidate finished training"):
        select_best([])


def test_command_gates_a_trained_run(
    tmp_path: Path,
    tracking_uri: str,
    frame: pd.DataFrame,
    gitops: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = train_candidate(
        candidates()[1], split(frame), data_uri="d", data_sha256="d" * 64, commit="c"
    )
    write_dataset(frame, str(tmp_path / "d.parquet"))
    monkeypatch.chdir(gitops)
    args = [
        "--results",
        json.dumps([json.dumps(result.summary())]),
        "--data",
        str(tmp_path / "d.parquet"),
        "--tracking-uri",
        tracking_uri,
        "--environment",
        "dev",
        "--output-dir",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    assert (tmp_path / "out" / "promote").read_text() == "true"
    assert (tmp_path / "out" / "model.onnx").read_bytes() == result.artifact
    assert main([*args, "--min-roc-auc", "0.99"]) == 0
    assert (tmp_path / "out" / "promote").read_text() == "false"
    assert json.loads((tmp_path / "out" / "evaluation.json").read_text())["passed"] is False
