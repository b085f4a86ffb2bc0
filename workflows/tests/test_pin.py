"""The pin: the committed files parse, render back byte for byte, and hand edits are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from churn_workflows import PipelineError
from churn_workflows.pin import (
    ENVIRONMENTS,
    Pin,
    parse_pin,
    parse_shadow_pin,
    pin_path,
    render_pin,
    render_shadow_pin,
)

ROOT = Path(__file__).resolve().parents[2]
GOOD = render_pin(
    Pin("s3://churn-dev-models/churn-model/sha256/" + "a" * 64 + ".onnx", "a" * 64, "3")
)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_committed_pins_are_bootstrap_pins_in_the_rendered_shape(env: str) -> None:
    text = (ROOT / pin_path(env)).read_text()
    pin = parse_pin(text, env)
    assert pin.is_bootstrap
    assert pin.uri.startswith(f"s3://churn-{env}-models/churn-model/sha256/")
    assert render_pin(pin) == text


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda t: t.replace('"3"', "3"), "MODEL_VERSION must be a quoted registry version, got 3"),
        (
            lambda t: t.replace("a" * 64 + '"', "A" * 64 + '"'),
            "MODEL_SHA256 must be 64 lower-case hex",
        ),
        (lambda t: t.replace("s3://", "https://"), "MODEL_URI must be s3:// or file://"),
        (
            lambda t: t.replace("MODEL_VERSION", "MODEL_VERSON"),
            "env must set exactly MODEL_URI, MODEL_SHA256, MODEL_VERSION",
        ),
        (
            lambda t: t + "            - name: EXTRA\n              value: x\n",
            "env must set exactly",
        ),
        (
            lambda t: t.replace("kind: Deployment", "kind: Rollout"),
            "expected a patch on the Deployment 'churn-api'",
        ),
        (
            lambda t: t.replace("        - name: churn-api\n", "        - name: other\n"),
            "containers\\[churn-api\\]",
        ),
        (lambda t: t.replace("kind: Deployment", "kind: [Deployment"), "not YAML"),
        (lambda t: t + "---\nkind: Deployment\n", "expected one YAML mapping"),
    ],
)
def test_a_hand_broken_pin_is_refused_with_file_and_problem(edit, problem: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(
        PipelineError, match=f"overlays/dev/model.yaml at main: invalid model pin: .*{problem}"
    ):
        parse_pin(edit(GOOD), "overlays/dev/model.yaml at main")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_committed_shadow_pins_are_empty_in_the_rendered_shape(env: str) -> None:
    text = (ROOT / pin_path(env, "shadow")).read_text()
    assert parse_shadow_pin(text, env) is None
    assert render_shadow_pin(None) == text


def test_a_shadow_pin_round_trips_and_is_parsed_by_the_same_rules() -> None:
    pin = Pin("s3://churn-dev-models/churn-model/sha256/" + "a" * 64 + ".onnx", "a" * 64, "3")
    text = render_shadow_pin(pin)
    assert parse_shadow_pin(text, "x") == pin
    assert "            - name: SHADOW_MODEL_URI\n" in text
    where = "overlays/dev/shadow.yaml at main"
    with pytest.raises(PipelineError, match=f"{where}: invalid shadow pin: SHADOW_MODEL_SHA256"):
        parse_shadow_pin(text.replace("a" * 64 + '"', "A" * 64 + '"'), where)
    with pytest.raises(PipelineError, match="are all set or all empty"):
        parse_shadow_pin(text.replace('"3"', '""'), where)
    # A model pin is not a shadow pin, nor the other way round.
    with pytest.raises(PipelineError, match="env must set exactly SHADOW_MODEL_URI"):
        parse_shadow_pin(GOOD, where)
    with pytest.raises(PipelineError, match="invalid model pin: env must set exactly MODEL_URI"):
        parse_pin(text, where)


def test_an_unknown_environment_is_refused() -> None:
    with pytest.raises(PipelineError, match="unknown environment 'qa'"):
        pin_path("qa")
    with pytest.raises(PipelineError, match="unknown pin 'canary'"):
        pin_path("dev", "canary")  # type: ignore[arg-type]
