"""Deferred metric updates (``strongroom.metrics.Tally``, used by gunicorn
workers): what a flush writes is what the updates would have written one by one."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from strongroom import metrics


def pair(name: str):
    """Two registries with the same counter and histogram, for one-by-one vs deferred."""
    out = []
    for _ in range(2):
        registry = CollectorRegistry()
        counter = Counter(name + "_total", "c", ["route"], registry=registry)
        histogram = Histogram(name + "_seconds", "h", ["op"], buckets=metrics.LATENCY_BUCKETS, registry=registry)
        out.append((registry, counter, histogram))
    return out


def samples(registry) -> dict:
    """Every sample but the ``_created`` timestamps (which differ between registries)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


# Values on, between and beyond the bucket bounds (0.0005 .. 5.0, then +Inf).
VALUES = [0.0, 0.0005, 0.0007, 0.001, 0.003, 0.02, 0.05, 0.3, 2.5, 4.9, 5.0, 7.5, 100.0, 0.0001]


def test_a_flush_writes_what_each_update_would_have():
    (direct, d_counter, d_histogram), (deferred, counter, histogram) = pair("strongroom_unit_flush")
    tally = metrics.Tally()
    for value in VALUES:
        d_counter.labels("a").inc()
        d_counter.labels("b").inc(2.5)
        d_histogram.labels("get").observe(value)
        tally.add(counter.labels("a"), 1)
        tally.add(counter.labels("b"), 2.5)
        tally.add(histogram.labels("get"), value)
    assert set(samples(deferred).values()) == {0.0}  # tallied, not written yet
    tally.flush()
    assert samples(deferred) == samples(direct)
    assert samples(direct)[("strongroom_unit_flush_seconds_count", (("op", "get"),))] == len(VALUES)
    assert len(tally) == 0


def test_updates_are_summed_as_they_come():
    registry = CollectorRegistry()
    counter = Counter("strongroom_unit_summed_total", "c", ["route"], registry=registry)
    tally = metrics.Tally()
    for _ in range(10_000):
        tally.add(counter.labels("a"), 1)
    assert len(tally) == 1
    tally.flush()
    assert registry.get_sample_value("strongroom_unit_summed_total", {"route": "a"}) == 10_000


def test_updates_are_written_at_once_unless_the_process_defers_them():
    registry = CollectorRegistry()
    counter = Counter("strongroom_unit_direct_total", "c", registry=registry)
    metrics.inc(counter)
    assert registry.get_sample_value("strongroom_unit_direct_total") == 1
