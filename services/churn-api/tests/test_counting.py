"""Plain-number counters and histograms: Prometheus' bucket rule, series order, clear refusals."""

from __future__ import annotations

import pytest
from churn_api.counting import Buckets, CounterFamily, HistogramFamily
from prometheus_client import CollectorRegistry, generate_latest


def test_a_value_on_a_bound_counts_in_that_bucket() -> None:
    buckets = Buckets((0.5, 1.0))
    for value in (0.5, 0.75, 1.0, 3.0, -1.0):
        buckets.observe(value)
    assert buckets.cumulative() == [("0.5", 2.0), ("1.0", 4.0), ("+Inf", 5.0)]
    assert buckets.sum == 4.25


def test_many_observations_add_up_with_single_ones() -> None:
    buckets = Buckets((0.5, 1.0))
    buckets.observe(0.25)
    buckets.add([1, 0, 2], total=10.0)
    assert buckets.cumulative() == [("0.5", 2.0), ("1.0", 2.0), ("+Inf", 4.0)]
    assert buckets.sum == 10.25


def test_bucket_counts_of_another_shape_are_refused() -> None:
    with pytest.raises(ValueError, match="expected 3 bucket counts, got 2"):
        Buckets((0.5, 1.0)).add([1, 1], total=1.0)


def test_label_values_must_match_the_label_names() -> None:
    family = CounterFamily("things", "Things.", ["kind"])
    with pytest.raises(ValueError, match=r"things takes labels \('kind',\)"):
        family.labels("a", "b")


def test_bucket_bounds_must_increase() -> None:
    with pytest.raises(ValueError, match="bucket bounds must increase"):
        HistogramFamily("sizes", "Sizes.", buckets=(1.0, 1.0, 2.0))


def test_series_render_in_the_order_they_were_first_used() -> None:
    registry = CollectorRegistry()
    family = CounterFamily("things", "Things.", ["kind"])
    registry.register(family)
    family.labels("b").value += 2
    family.labels("a").value += 1
    lines = [line for line in generate_latest(registry).decode().splitlines() if "{" in line]
    assert lines == ['things_total{kind="b"} 2.0', 'things_total{kind="a"} 1.0']


def test_an_unlabelled_family_has_its_series_from_the_start() -> None:
    registry = CollectorRegistry()
    registry.register(CounterFamily("things", "Things."))
    registry.register(HistogramFamily("sizes", "Sizes.", buckets=(1.0,)))
    text = generate_latest(registry).decode()
    assert "things_total 0.0" in text
    assert 'sizes_bucket{le="+Inf"} 0.0' in text
    assert "sizes_count 0.0" in text


def test_a_name_registered_twice_is_refused() -> None:
    registry = CollectorRegistry()
    registry.register(CounterFamily("things", "Things."))
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(CounterFamily("things", "Other things."))
