"""Counters and histograms as plain Python numbers, exposed through a Prometheus collector.

prometheus_client's ``Counter`` and ``Histogram`` take a lock on every
observation so that threads can share them; the request path observes a few
of them per request, all on the event loop's thread, where the lock is pure
cost. Here a series is a plain object (``Count``, ``Buckets``) whose numbers
the caller bumps directly, and a family (``CounterFamily``, ``HistogramFamily``)
renders its series at scrape time exactly as prometheus_client's own would:
the same names, labels, ``le`` bounds and values.

Steps for a caller:

1. build the family once and register it on the registry (the order of
   registration is the order of ``/metrics``);
2. take a series with ``labels(...)`` once per label set and keep it;
3. bump it: ``count.value += n``, ``buckets.observe(x)``, ``buckets.add(...)``.

Series appear in ``/metrics`` in the order ``labels`` first made them, as
prometheus_client's do. Only one thread may bump a series: nothing is locked.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import accumulate

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["Buckets", "Count", "CounterFamily", "HistogramFamily"]


class Count:
    """One counter series: ``value`` only ever grows."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Buckets:
    """One histogram series: how many observations fell in each bucket, and their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        # One more than the bounds: the last counts what is above them all (le="+Inf").
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count ``value`` in the first bucket whose bound is >= it (Prometheus' ``le``)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def add(self, counts: Sequence[int], total: float) -> None:
        """Count many observations: ``counts`` per bucket (+Inf last) that sum to ``total``."""
        if len(counts) != len(self.counts):
            raise ValueError(f"expected {len(self.counts)} bucket counts, got {len(counts)}")
        self.counts = [mine + int(more) for mine, more in zip(self.counts, counts, strict=True)]
        self.sum += total

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, observations <= le)`` for each bound, then ``+Inf``, as Prometheus reads them."""
        bounds = [*map(floatToGoString, self.bounds), "+Inf"]
        return [(le, float(c)) for le, c in zip(bounds, accumulate(self.counts), strict=True)]


class CounterFamily(Collector):
    """A counter with labels; ``name`` without ``_total``, as prometheus_client's ``Counter``."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name, self.documentation = name, documentation
        self.labelnames = tuple(labelnames)
        self._series: dict[tuple[str, ...], Count] = {}
        if not self.labelnames:  # the one series exists from the start, at 0
            self.labels()

    def labels(self, *values: str) -> Count:
        """The series of these label values, made (at 0) on first use."""
        series = self._series.get(values)
        if series is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            series = self._series[values] = Count()
        return series

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, series in self._series.items():
            family.add_metric(values, float(series.value))
        yield family

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)


class HistogramFamily(Collector):
    """A histogram with labels and fixed bucket bounds, as prometheus_client's ``Histogram``."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
    ) -> None:
        self.name, self.documentation = name, documentation
        self.labelnames = tuple(labelnames)
        self.bounds = tuple(float(b) for b in buckets)
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError(f"{name}: bucket bounds must increase, got {buckets}")
        self._series: dict[tuple[str, ...], Buckets] = {}
        if not self.labelnames:  # the one series exists from the start, empty
            self.labels()

    def labels(self, *values: str) -> Buckets:
        """The series of these label values, made (empty) on first use."""
        series = self._series.get(values)
        if series is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            series = self._series[values] = Buckets(self.bounds)
        return series

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, series in self._series.items():
            family.add_metric(values, series.cumulative(), series.sum)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
