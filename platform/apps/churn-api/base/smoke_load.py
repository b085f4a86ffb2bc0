"""Drive predictions at a release under analysis, so the analysis has data to judge.

Where no client reaches the new pods (the dev canary behind `stableService`, the staging
preview), the release's AnalysisRun starts this as a Job (analysistemplate-smoke-load.yaml)
in the churn-api image, which has Python but nothing of this repository.

Steps:
1. Read the request schema the new pods serve (`/schema/openapi.json`): the feature
   contract travels with the model, so the records always match what is being judged.
2. Draw records within the schema's enums and bounds, from a fixed seed.
3. Until the duration is over, send each record to every target (the new pods, and the
   stable ones when given), so the prediction-shift metric compares the same inputs.
4. Print one JSON summary line per target; exit 1 when the new pods answered no
   prediction at all (a release nobody could call must abort, not pause for want of data).
   The stable target may be down (the first release into an environment): noted only.

Standard library only: it runs as a mounted file in the service image.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["SmokeLoadError", "draw_records", "main", "request_schema", "run"]

SCHEMA_PATH = "/schema/openapi.json"
PREDICT_PATH = "/v1/predict"
# A plausible customer, well inside the contract's hard limits (tenure up to 120 months...).
TYPICAL_MAX = {"tenure": 72, "support_tickets": 4, "monthly_charges": 120.0}


class SmokeLoadError(Exception):
    """The new pods cannot be driven: no schema, or no prediction answered."""


def _get_json(url: str, timeout: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http only)
        return json.load(response)


def request_schema(base_url: str, timeout: float = 5.0) -> dict[str, Any]:
    """The single-prediction request schema the service at ``base_url`` serves."""
    try:
        document = _get_json(base_url + SCHEMA_PATH, timeout)
    except (OSError, ValueError) as exc:
        raise SmokeLoadError(f"cannot read {base_url}{SCHEMA_PATH}: {exc}") from None
    try:
        schema = document["components"]["schemas"]["PredictRequest"]
        _ = schema["properties"], schema["required"]
    except (KeyError, TypeError):
        raise SmokeLoadError(f"{base_url}{SCHEMA_PATH} has no PredictRequest schema") from None
    return dict(schema)


def _draw(rng: random.Random, name: str, prop: dict[str, Any]) -> Any:
    if "enum" in prop:
        return rng.choice(list(prop["enum"]))
    kind = prop.get("type")
    if kind == "boolean":
        return rng.random() < 0.5
    low = prop.get("minimum", 0)
    high = min(prop.get("maximum", 100), TYPICAL_MAX.get(name, prop.get("maximum", 100)))
    # A whole-number feature is a JSON number with multipleOf 1 (so 62.0 is accepted too).
    if kind == "integer" or prop.get("multipleOf") == 1:
        return rng.randint(int(low), int(high))
    if kind == "number":
        return round(rng.uniform(float(low), float(high)), 2)
    raise SmokeLoadError(f"feature {name!r} has a type the load cannot draw: {prop}")


def draw_records(schema: dict[str, Any], count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` records with every required feature, the same for the same seed."""
    rng = random.Random(seed)  # noqa: S311 (reproducible load, not secrets)
    properties, required = schema["properties"], sorted(schema["required"])
    return [{name: _draw(rng, name, properties[name]) for name in required} for _ in range(count)]


def _post(url: str, record: dict[str, Any], timeout: float) -> str:
    """The outcome of one prediction: the status class (2xx/4xx/5xx) or ``unreachable``."""
    request = urllib.request.Request(  # noqa: S310 (http only)
        url + PREDICT_PATH,
        data=json.dumps(record).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return f"{response.status // 100}xx"
    except urllib.error.HTTPError as exc:
        return f"{exc.code // 100}xx"
    except OSError:
        return "unreachable"


def run(
    new: str,
    stable: str | None,
    duration: float,
    rate: float,
    seed: int,
    *,
    clock: Callable[[], float] = time.monotonic,
    timeout: float = 5.0,
) -> dict[str, Counter[str]]:
    """Send the records round-robin to every target for ``duration`` seconds."""
    records = draw_records(request_schema(new, timeout), 200, seed)
    targets = [new, stable] if stable else [new]
    outcomes: dict[str, Counter[str]] = {target: Counter() for target in targets}
    deadline = clock() + duration
    period = 1.0 / rate
    sent = 0
    while clock() < deadline:
        started = clock()
        record = records[sent % len(records)]
        for target in targets:
            outcomes[target][_post(target, record, timeout)] += 1
        sent += 1
        time.sleep(max(0.0, period - (clock() - started)))
    if outcomes[new]["2xx"] == 0:
        raise SmokeLoadError(f"{new} answered no prediction: {dict(outcomes[new])}")
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new", required=True, help="base URL of the pods under analysis")
    parser.add_argument(
        "--stable", default="", help="base URL of the stable pods, sent the same records"
    )
    parser.add_argument("--duration", type=float, required=True, help="seconds of load")
    parser.add_argument("--rate", type=float, default=5.0, help="records per second")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rate <= 0:
        parser.error("--duration and --rate must be positive")
    try:
        outcomes = run(args.new, args.stable, args.duration, args.rate, args.seed)
    except SmokeLoadError as exc:
        print(json.dumps({"event": "smoke_load_failed", "detail": str(exc)}), file=sys.stderr)
        return 1
    for target, counts in outcomes.items():
        print(json.dumps({"event": "smoke_load_done", "target": target, **counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
