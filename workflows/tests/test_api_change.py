"""A contract change is one promotion PR: its title says breaking API change, its body the diff."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from churn_contract import builtin_contract, diff_contracts, parse_contract
from churn_workflows.api_change import markdown, title_suffix
from churn_workflows.pipeline import PipelineConfig, run_pipeline
from churn_workflows.steps.evaluate import GateConfig
from churn_workflows.steps.ingest import write_dataset
from churn_workflows.steps.promote import git
from churn_workflows.steps.train import candidates
from test_bad_data import CONTRACT, _csv


def test_the_title_and_table_name_each_changed_field() -> None:
    changes = diff_contracts(builtin_contract(), parse_contract(CONTRACT))
    assert title_suffix(changes) == f" (breaking API change: {len(changes)} fields)"
    table = markdown(changes)
    assert table.startswith("### API: BREAKING API CHANGE")
    assert "| `support_tickets` | removed | int [0, 100] | - |" in table
    assert "| `total_charges` | added | - | float [0, 100000] |" in table
    assert title_suffix([]) == ""
    assert markdown([]) == ""
    assert "Unknown: gone" in markdown("gone")


@pytest.mark.slow
def test_a_model_with_another_contract_is_promoted_as_a_breaking_api_change(
    tmp_path: Path,
    tracking_uri: str,
    gitops: Path,
    frame: pd.DataFrame,
    versions: Callable[[], list[object]],
) -> None:
    write_dataset(frame, str(tmp_path / "data.parquet"))
    first_config = PipelineConfig(
        data_uri=(tmp_path / "data.parquet").as_uri(),
        reference_uri=None,
        environment="dev",
        tracking_uri=tracking_uri,
        bucket_uri=(tmp_path / "bucket").as_uri(),
        repo=gitops,
        report_dir=tmp_path / "reports",
        candidates=(candidates()[1],),
    )
    first = run_pipeline(first_config, progress=lambda _: None)
    assert first.promotion is not None
    message = git(gitops, "log", "-1", "--format=%B", first.promotion.branch)
    assert message.startswith("Promote churn-model version 1 to dev\n")
    git(gitops, "merge", "--quiet", "--no-ff", "-m", "review", first.promotion.branch)

    (tmp_path / "telco.csv").write_text(_csv())
    second = run_pipeline(
        replace(
            first_config,
            data_uri=(tmp_path / "telco.csv").as_uri(),
            contract=parse_contract(CONTRACT),
            # The sample's label is noise: the floors are not what this test is about.
            gate=GateConfig(min_roc_auc=0.0, min_pr_auc_lift=0.0, min_brier_skill=-1.0),
        ),
        progress=lambda _: None,
    )
    assert second.evaluation is not None
    assert second.evaluation.note is not None
    assert second.evaluation.note.startswith("serving model uses contract `")
    assert second.evaluation.note.endswith("`: compared on floors only")
    assert second.evaluation.comparison is None
    assert second.promotion is not None
    message = git(gitops, "log", "-1", "--format=%B", second.promotion.branch)
    title, _, body = message.partition("\n\n")
    assert title == "Promote churn-model version 2 to dev (breaking API change: 5 fields)"
    assert "### API: BREAKING API CHANGE" in body
    assert "| `support_tickets` | removed | int [0, 100] | - |" in body
    assert "| `paperless_billing` |" not in body  # the same field on both sides
    assert second.evaluation.note in body  # the gate's "compared on floors only" reaches the PR
    assert len(versions()) == 2
