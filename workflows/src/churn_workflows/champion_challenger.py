"""Champion vs challenger: the serving model and its shadow on the same labelled live traffic.

churn-monitor computes the numbers (steps/monitor.py); this module is how they
are kept in the prediction store's ``monitor_results`` and read back, for the
monitor's summary and for the promotion pull request of a model that ran as
the shadow. The keying, one row per number:

- ``day``: the monitor run's day (as for the ``window.*`` numbers);
- ``model_version``: the serving (champion) version;
- ``metric``: ``shadow.<name>``;
- ``feature``: the shadow (challenger) version.

churn-api turns only ``window.*`` rows without a ``feature`` into gauges, so
these stay out of the service.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from churn_store.prediction_store import MonitorResult, open_store

__all__ = [
    "GAIN_KEYS",
    "SHADOW_PREFIX",
    "ChampionChallenger",
    "latest_champion_challenger",
]

SHADOW_PREFIX = "shadow."
# The paired DeLong interval's keys (steps/evaluate.py paired_auc_delta) that are kept.
GAIN_KEYS = ("delta", "low", "high")
_QUALITY = ("roc_auc", "pr_auc", "brier")
_GAIN = {"roc_auc_gain": "delta", "roc_auc_gain_low": "low", "roc_auc_gain_high": "high"}


def _day_number(day: date) -> float:
    # A day as YYYYMMDD: monitor_results holds numbers, and this one stays readable in SQL.
    return float(day.year * 10000 + day.month * 100 + day.day)


def _number_day(value: float) -> date:
    number = int(value)
    return date(number // 10000, number // 100 % 100, number % 100)


@dataclass(frozen=True)
class ChampionChallenger:
    """The serving model (champion) and its shadow (challenger) on the same labelled captures.

    ``serving`` and ``shadow`` hold ROC AUC, PR AUC and Brier (an AUC is None with
    one class only); ``gain`` is the paired DeLong 95 % interval of
    ROC AUC(shadow) - ROC AUC(serving), None when either class has fewer than 2 rows.
    """

    computed_on: date
    serving_version: str
    shadow_version: str
    labelled: int
    first_day: date
    last_day: date
    days: int
    serving: dict[str, float | None]
    shadow: dict[str, float | None]
    gain: dict[str, float] | None

    def to_results(self) -> list[MonitorResult]:
        """The monitor_results rows of this comparison."""
        numbers: dict[str, float | None] = {
            "labelled": float(self.labelled),
            "days": float(self.days),
            "first_day": _day_number(self.first_day),
            "last_day": _day_number(self.last_day),
            **{f"serving_{k}": self.serving[k] for k in _QUALITY},
            **{f"shadow_{k}": self.shadow[k] for k in _QUALITY},
            **{k: None if self.gain is None else self.gain[g] for k, g in _GAIN.items()},
        }
        return [
            MonitorResult(
                self.computed_on, self.serving_version, SHADOW_PREFIX + k, v, self.shadow_version
            )
            for k, v in numbers.items()
        ]

    @classmethod
    def from_results(cls, results: Iterable[MonitorResult]) -> list[ChampionChallenger]:
        """The comparisons among ``results`` (the store's rows), one per day and pair."""
        grouped: dict[tuple[date, str, str], dict[str, float | None]] = {}
        for r in results:
            if r.metric.startswith(SHADOW_PREFIX) and r.feature:
                key = (r.day, r.model_version, r.feature)
                grouped.setdefault(key, {})[r.metric.removeprefix(SHADOW_PREFIX)] = r.value
        found = []
        for (day, serving, shadow), n in sorted(grouped.items()):
            labelled, first, last, days = (
                n.get(k) for k in ("labelled", "first_day", "last_day", "days")
            )
            if labelled is None or first is None or last is None or days is None:
                continue  # a partial write: not evidence
            gain = {g: n.get(k) for k, g in _GAIN.items()}
            found.append(
                cls(
                    computed_on=day,
                    serving_version=serving,
                    shadow_version=shadow,
                    labelled=int(labelled),
                    first_day=_number_day(first),
                    last_day=_number_day(last),
                    days=int(days),
                    serving={k: n.get(f"serving_{k}") for k in _QUALITY},
                    shadow={k: n.get(f"shadow_{k}") for k in _QUALITY},
                    gain=None
                    if any(v is None for v in gain.values())
                    else {k: float(v) for k, v in gain.items() if v is not None},
                )
            )
        return found

    def _gain_text(self, places: int, *, none: str, middle: str) -> str:
        """The gain and its interval at ``places`` decimals, or ``none`` and why there is none."""
        if self.gain is None:
            return f"{none} (fewer than 2 churned or 2 retained)"
        delta, low, high = (f"{self.gain[k]:+.{places}f}" for k in ("delta", "low", "high"))
        return f"{delta}{middle}[{low}, {high}]"

    def summary(self) -> str:
        """One human line: both models' numbers and the gain's interval."""

        def show(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        gain = "gain " + self._gain_text(3, none="n/a", middle=", 95% CI ")
        return (
            f"shadow version {self.shadow_version} beside version {self.serving_version}: "
            f"{self.labelled} labelled over {self.days} day(s) {self.first_day}..{self.last_day}; "
            f"ROC AUC {show(self.shadow['roc_auc'])} vs {show(self.serving['roc_auc'])} ({gain}), "
            f"PR AUC {show(self.shadow['pr_auc'])} vs {show(self.serving['pr_auc'])}, "
            f"Brier {show(self.shadow['brier'])} vs {show(self.serving['brier'])}"
        )

    def to_markdown(self) -> str:
        """The promotion pull request's "Live shadow evidence" section."""

        def cell(value: float | None) -> str:
            return "-" if value is None else f"{value:.4f}"

        interval = self._gain_text(4, none="-", middle=" ")
        lines = [
            "### Live shadow evidence",
            "",
            f"Version {self.shadow_version} as the shadow beside serving version "
            f"{self.serving_version}: n = {self.labelled} labelled live predictions "
            f"scored by both, {self.days} day(s) from {self.first_day} to {self.last_day} "
            f"(churn-monitor, {self.computed_on}).",
            "",
            "| metric | serving | shadow (this candidate) | 95% CI of the gain (paired DeLong) |",
            "|---|---:|---:|---|",
            f"| roc_auc | {cell(self.serving['roc_auc'])} | {cell(self.shadow['roc_auc'])} "
            f"| {interval} |",
            f"| pr_auc | {cell(self.serving['pr_auc'])} | {cell(self.shadow['pr_auc'])} | |",
            f"| brier | {cell(self.serving['brier'])} | {cell(self.shadow['brier'])} | |",
        ]
        return "\n".join(lines) + "\n"


def latest_champion_challenger(
    store_url: str, shadow_version: str, serving_version: str | None = None
) -> ChampionChallenger | None:
    """The monitor's latest comparison of ``shadow_version`` (beside ``serving_version`` when
    it has one), or None; a store that cannot be read raises ``StoreError``."""
    store = open_store(store_url)
    try:
        results = store.latest_monitor_results()
    finally:
        store.close()
    found = [
        c for c in ChampionChallenger.from_results(results) if c.shadow_version == shadow_version
    ]
    if not found:
        return None
    # What serves now first, then the most recent run, then the most labels.
    return max(
        found,
        key=lambda c: (c.serving_version == serving_version, c.computed_on, c.labelled),
    )
