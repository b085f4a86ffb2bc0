"""The loop end to end on this machine: serve, capture, outcomes, monitor, retrain, shadow, promote.

A real churn-api capturing into SQLite, POST /v1/feedback, the monitor step,
the pipeline on the monitor's snapshot, gated against the model that serves and
pinned as its shadow, then the shadow's live comparison and its promotion.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from churn_workflows import PipelineError
from churn_workflows.loop import pinned, run_loop, shifted_population
from churn_workflows.pin import pin_path
from churn_workflows.pipeline import PipelineConfig, run_pipeline
from churn_workflows.steps.ingest import write_dataset
from churn_workflows.steps.promote import git
from churn_workflows.steps.synthetic import generate
from churn_workflows.steps.train import candidates


@pytest.mark.slow
def test_the_monitor_asks_for_a_retrain_that_gates_against_the_served_model(
    tmp_path: Path, tracking_uri: str, gitops: Path
) -> None:
    data = (tmp_path / "data.parquet").as_uri()
    write_dataset(generate(3000, seed=7), data)
    config = PipelineConfig(
        data_uri=data,
        reference_uri=None,  # a first run: nothing to compare drift with yet
        environment="dev",
        tracking_uri=tracking_uri,
        bucket_uri=(tmp_path / "models").as_uri(),
        repo=gitops,
        report_dir=tmp_path / "reports",
        candidates=(candidates()[1],),
    )
    first = run_pipeline(config, progress=lambda _: None)
    assert first.registered is not None
    assert first.promotion is not None
    git(gitops, "merge", "--quiet", first.promotion.branch)  # the reviewer merges version 1
    pin = {
        "MODEL_URI": first.registered.uri,
        "MODEL_SHA256": first.registered.sha256,
        "MODEL_VERSION": first.registered.version,
    }

    loop = run_loop(
        pin=pin,
        store_path=tmp_path / "predictions.db",
        models_uri=config.bucket_uri,
        data_uri=(tmp_path / "data-bucket").as_uri(),
        pipeline=lambda uri, limits: replace(
            config, data_uri=uri, thresholds=limits, report_dir=tmp_path / "loop"
        ),
        rows=2000,
        progress=lambda _: None,
    )

    assert [line.split()[0] for line in loop.lines] == [
        "capture",
        "feedback",
        "monitor",
        "retrain",
        "gate",
        "shadow",
        "serve",
        "compare",
        "promote",
    ]
    assert loop.monitor is not None
    window = loop.monitor.window[pin["MODEL_VERSION"]]
    assert window["predictions"] == 2000
    assert window["labelled"] == pytest.approx(1600, abs=80)  # 80 % of outcomes arrive
    assert window["max_feature_psi"] is not None
    assert window["max_feature_psi"] > 0.2  # measured against version 1's own profile
    assert loop.retrain is not None
    assert loop.retrain.data_sha256 == loop.monitor.snapshot_sha256
    assert loop.retrain.validation is not None
    assert loop.retrain.validation.passed  # drift reported, not refused
    evaluation = loop.retrain.evaluation
    assert evaluation is not None
    assert evaluation.running_pin is not None
    assert evaluation.running_pin["version"] == "1"
    assert loop.retrain.promotion is not None
    assert loop.retrain.promotion.branch == "shadow/churn-model-dev-v2"
    assert loop.comparison is not None
    assert (loop.comparison.serving_version, loop.comparison.shadow_version) == ("1", "2")
    assert loop.promotion is not None
    assert loop.promotion.branch == "promote/churn-model-dev-v2"


def test_the_shifted_population_is_seeded_and_shifted() -> None:
    a, b = shifted_population(500), shifted_population(500)
    assert a.equals(b)
    assert a["tenure"].mean() > generate(500, seed=21)["tenure"].mean() + 10


def test_the_pins_are_read_from_the_checked_out_files(gitops: Path) -> None:
    serving, shadow = pinned(gitops, "dev")
    assert serving.is_bootstrap
    assert shadow is None  # the committed shadow.yaml pins none


def test_a_clone_without_a_shadow_pin_is_named_with_the_way_out(gitops: Path) -> None:
    (gitops / pin_path("dev", "shadow")).unlink()
    named = r"shadow\.yaml is missing: the GitOps clone has no shadow pin \(`make clean`"
    with pytest.raises(PipelineError, match=named):
        pinned(gitops, "dev")
