"""The recorder: exact HDR histograms per scope and interval, out-of-range values, merge."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.recorder import (
    HIGHEST_US,
    Interval,
    Recorder,
    ScopeStats,
    histogram_mean_us,
    histogram_stddev_us,
    new_histogram,
    value_at_percentile_us,
)
from harness.slo import Measured, evaluate, parse_objective


def reference(values_us: list[int]) -> HdrHistogram:
    """A histogram filled by the package's own record_value, the ground truth."""
    histogram = new_histogram()
    for value in values_us:
        assert histogram.record_value(value)
    return histogram


def assert_same(actual: HdrHistogram, expected: HdrHistogram) -> None:
    """What HdrHistogram.equals checks, with the counts compared in numpy (equals is slow)."""
    assert actual.get_total_count() == expected.get_total_count()
    assert actual.get_min_value() == expected.get_min_value()
    assert actual.get_max_value() == expected.get_max_value()
    assert np.array_equal(
        np.ctypeslib.as_array(actual.counts), np.ctypeslib.as_array(expected.counts)
    )
    assert actual.encode() == expected.encode()


def record_all(recorder: Recorder, samples: list[tuple[float, int]], scopes: list[str]) -> None:
    for at_s, value_us in samples:
        recorder.record(scopes, at_s, value_us / 1_000_000, error=False)


samples_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=30.0, allow_nan=False),
        st.one_of(
            st.integers(min_value=0, max_value=5000),
            st.integers(min_value=0, max_value=HIGHEST_US),
        ),
    ),
    max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(samples=samples_strategy)
def test_totals_and_intervals_equal_record_value_histograms(
    samples: list[tuple[float, int]],
) -> None:
    recorder = Recorder()
    record_all(recorder, samples, ["all"])
    if not samples:
        assert recorder.scope_names() == []
        return
    assert_same(recorder.scope("all", 30.0).histogram, reference([v for _, v in samples]))
    intervals = recorder.intervals("all")
    first, last = int(min(at for at, _ in samples)), int(max(at for at, _ in samples))
    assert [interval.index for interval in intervals] == list(range(first, last + 1))
    for interval in intervals:
        expected = [v for at, v in samples if int(at) == interval.index]
        assert_same(interval.histogram, reference(expected))
        assert interval.requests == len(expected)
        assert (interval.start_s, interval.end_s) == (interval.index, interval.index + 1)


def test_batches_larger_than_the_buffer_are_exact() -> None:
    rng = random.Random(7)
    samples = [(i / 1000, int(rng.expovariate(1 / 5000))) for i in range(20_000)]
    recorder = Recorder(interval_s=2.0)
    record_all(recorder, samples, ["all", "phase=fault"])
    expected_total = reference([v for _, v in samples])
    for name in ("all", "phase=fault"):
        assert_same(recorder.scope(name, 20.0).histogram, expected_total)
        intervals = recorder.intervals(name)
        assert [interval.index for interval in intervals] == list(range(10))
        for interval in intervals:
            expected = [v for at, v in samples if int(at // 2.0) == interval.index]
            assert_same(interval.histogram, reference(expected))
            assert (interval.start_s, interval.end_s) == (
                2.0 * interval.index,
                2.0 * (1 + interval.index),
            )


def test_out_of_range_latencies_are_clamped_and_counted() -> None:
    recorder = Recorder()
    recorder.record(["all"], 0.5, 7200.0, error=False)  # two hours
    recorder.record(["all"], 0.5, -0.001, error=False)  # a clock gone backwards
    recorder.record(["all"], 0.5, 0.0, error=False)  # zero is in range
    stats = recorder.scope("all", 1.0)
    assert stats.requests == 3
    assert stats.out_of_range == 2
    assert_same(stats.histogram, reference([HIGHEST_US, 0, 0]))
    assert stats.max_ms == new_histogram().get_highest_equivalent_value(HIGHEST_US) / 1000
    assert stats.summary()["out_of_range"] == 2


def test_summary_has_exactly_the_contract_fields() -> None:
    recorder = Recorder()
    for i in range(1, 1001):  # 1..1000 us: single-microsecond buckets, exact percentiles
        recorder.record(["all"], i / 1000, i / 1_000_000, error=i % 100 == 0)
    stats = recorder.scope("all", 2.0)
    assert stats.summary() == {
        "requests": 1000,
        "errors": 10,
        "error_rate": 0.01,
        "throughput_rps": 500.0,
        "latency_ms": {
            "p50": 0.5,
            "p90": 0.9,
            "p99": 0.99,
            "p99.9": 0.999,
            "max": 1.0,
            "mean": round(stats.histogram.get_mean_value() / 1000, 3),
        },
    }


def test_percentile_is_the_smallest_value_covering_the_share() -> None:
    recorder = Recorder()
    for value in range(1, 11):
        recorder.record(["all"], 0.0, value / 1_000_000, error=False)
    stats = recorder.scope("all", 1.0)
    # 21 % of 10 values is 2.1 values: the third value is the first that covers them
    # (the package's get_value_at_percentile rounds the rank down to 2 here).
    assert stats.percentile_ms(21.0) == 0.003
    assert stats.percentile_ms(0.0) == 0.001
    assert stats.percentile_ms(100.0) == 0.010
    assert stats.histogram.get_value_at_percentile(21.0) == 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mean_and_stddev_agree_with_the_package(seed: int) -> None:
    rng = random.Random(seed)
    histogram = reference([int(rng.lognormvariate(8, 2)) for _ in range(2000)])
    assert histogram_mean_us(histogram) == pytest.approx(histogram.get_mean_value(), rel=1e-9)
    assert histogram_stddev_us(histogram) == pytest.approx(histogram.get_stddev(), rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(min_value=0, max_value=HIGHEST_US), min_size=1, max_size=200))
def test_percentiles_are_ceiling_ranks(values: list[int]) -> None:
    histogram = reference(values)
    ordered = sorted(values)
    for percentile in (1.0, 50.0, 90.0, 99.0, 99.9, 100.0):
        rank = max(1, -(-round(percentile * 10) * len(values) // 1000))  # ceil, in integers
        expected = histogram.get_highest_equivalent_value(ordered[rank - 1])
        assert value_at_percentile_us(histogram, percentile) == expected


def test_rates_are_zero_without_requests_or_time() -> None:
    empty = ScopeStats("x", 0, 0, 0.0, new_histogram(), 0)
    assert (empty.error_rate, empty.throughput_rps) == (0.0, 0.0)
    assert (empty.percentile_ms(99.0), empty.max_ms, empty.mean_ms) == (0.0, 0.0, 0.0)
    assert empty.summary()["latency_ms"] == dict.fromkeys(
        ("p50", "p90", "p99", "p99.9", "max", "mean"), 0.0
    )
    assert "out_of_range" not in empty.summary()


def test_intervals_include_empty_gaps_and_count_errors() -> None:
    recorder = Recorder()
    # Below 2048 us the buckets are one microsecond wide, so these values are exact.
    recorder.record(["all"], 1.2, 0.001, error=True)
    recorder.record(["all"], 1.9, 0.002, error=False)
    recorder.record(["all"], 4.0, 0.0005, error=True)
    intervals = recorder.intervals("all")
    assert [(i.index, i.start_s, i.end_s, i.requests, i.errors) for i in intervals] == [
        (1, 1.0, 2.0, 2, 1),
        (2, 2.0, 3.0, 0, 0),
        (3, 3.0, 4.0, 0, 0),
        (4, 4.0, 5.0, 1, 1),
    ]
    gap: Interval = intervals[1]
    assert gap.histogram.get_total_count() == 0
    assert (gap.percentile_ms(99.0), gap.max_ms) == (0.0, 0.0)
    assert intervals[0].max_ms == 2.0
    assert intervals[0].percentile_ms(50.0) == 1.0


def test_each_scope_is_kept_apart_and_names_are_sorted() -> None:
    recorder = Recorder()
    recorder.record(["phase=fault", "all"], 0.0, 0.001, error=True)
    recorder.record(["all", "service=b,edge=a->b"], 0.0, 0.002, error=False)
    assert recorder.scope_names() == ["all", "phase=fault", "service=b,edge=a->b"]
    assert recorder.scope("all", 1.0).requests == 2
    fault = recorder.scope("phase=fault", 1.0)
    assert (fault.requests, fault.errors, fault.max_ms) == (1, 1, 1.0)
    with pytest.raises(KeyError, match="phase=recovery"):
        recorder.scope("phase=recovery", 1.0)


def test_a_scope_snapshot_does_not_change_with_later_records() -> None:
    recorder = Recorder()
    recorder.record(["all"], 0.0, 0.001, error=False)
    before = recorder.scope("all", 1.0)
    recorder.record(["all"], 0.0, 0.002, error=False)
    assert before.histogram.get_total_count() == 1
    assert recorder.scope("all", 1.0).requests == 2


def test_merge_equals_recording_everything_in_one_recorder() -> None:
    rng = random.Random(11)
    samples = [
        (rng.uniform(0, 10), rng.randrange(0, 50_000), rng.random() < 0.1) for _ in range(3000)
    ]
    samples.append((5.0, 9_000_000_000, False))  # out of range, in the second half

    def fill(recorder: Recorder, part: list[tuple[float, int, bool]]) -> None:
        for at_s, value_us, error in part:
            scopes = ["all", "phase=a" if at_s < 5 else "phase=b"]
            recorder.record(scopes, at_s, value_us / 1_000_000, error=error)

    whole, first, second = Recorder(), Recorder(), Recorder()
    fill(whole, samples)
    fill(first, samples[::2])
    fill(second, samples[1::2])
    first.merge(second)
    assert first.scope_names() == whole.scope_names()
    for name in whole.scope_names():
        merged, expected = first.scope(name, 10.0), whole.scope(name, 10.0)
        assert_same(merged.histogram, expected.histogram)
        assert (merged.requests, merged.errors, merged.out_of_range) == (
            expected.requests,
            expected.errors,
            expected.out_of_range,
        )
        for got, want in zip(first.intervals(name), whole.intervals(name), strict=True):
            assert (got.index, got.requests, got.errors) == (want.index, want.requests, want.errors)
            assert_same(got.histogram, want.histogram)


def test_merge_refuses_other_interval_lengths_and_itself() -> None:
    with pytest.raises(ValueError, match="intervals"):
        Recorder(interval_s=1.0).merge(Recorder(interval_s=0.5))
    recorder = Recorder()
    with pytest.raises(ValueError, match="itself"):
        recorder.merge(recorder)


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        Recorder(interval_s=0.0)
    with pytest.raises(ValueError, match="at_s"):
        Recorder().record(["all"], -0.1, 0.001, error=False)


def test_scope_stats_serve_as_the_slo_checks_measurements() -> None:
    recorder = Recorder()
    for i in range(100):
        recorder.record(["all"], i / 100, 0.200 if i == 99 else 0.010, error=i < 2)
    stats: Measured = recorder.scope("all", 1.0)
    assert evaluate(parse_objective("p99 < 250ms"), stats)[1] is True
    assert evaluate(parse_objective("p99.9 < 150ms"), stats)[1] is False
    assert evaluate(parse_objective("error_rate <= 2%"), stats)[1] is True


def test_counters_per_interval_survive_encoding_and_merging() -> None:
    recorder = Recorder()
    recorder.record(("a",), 0.5, 0.010, error=True)
    recorder.count(("a",), 0.7, "attempts", 3)
    recorder.count(("a",), 2.1, "ejections")  # an interval with a counter and no request
    copy = Recorder()
    copy.add_encoded("a", json.loads(json.dumps(recorder.encode_scope("a"))))
    copy.merge(recorder)
    assert [(i.index, i.requests, i.errors, dict(i.counters)) for i in copy.intervals("a")] == [
        (0, 2, 2, {"attempts": 6}),
        (1, 0, 0, {}),
        (2, 0, 0, {"ejections": 2}),
    ]
    assert copy.scope("a", 3.0).counters == {"attempts": 6, "ejections": 2}
    assert copy.scope("a", 3.0).summary()["counters"] == {"attempts": 6, "ejections": 2}


@settings(max_examples=60, deadline=None)
@given(
    samples=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=30.0, allow_nan=False),
            st.one_of(
                st.floats(min_value=-1.0, max_value=0.01, allow_nan=False),
                st.floats(min_value=0.0, max_value=4000.0, allow_nan=False),
            ),
            st.booleans(),
        ),
        max_size=300,
    )
)
def test_record_many_equals_recording_one_by_one(
    samples: list[tuple[float, float, bool]],
) -> None:
    one_by_one, batched = Recorder(interval_s=0.7), Recorder(interval_s=0.7)
    for at_s, latency_s, error in samples:
        one_by_one.record(["all"], at_s, latency_s, error=error)
    half = len(samples) // 2
    for part in (samples[:half], samples[half:]):
        batched.record_many("all", [s[0] for s in part], [s[1] for s in part], [s[2] for s in part])
    if not samples:
        assert batched.scope_names() == []
        return
    mine, theirs = batched.scope("all", 30.0), one_by_one.scope("all", 30.0)
    assert_same(mine.histogram, theirs.histogram)
    assert (mine.errors, mine.out_of_range) == (theirs.errors, theirs.out_of_range)
    assert batched.encode_scope("all") == one_by_one.encode_scope("all")


def test_record_many_refuses_what_record_refuses() -> None:
    recorder = Recorder()
    with pytest.raises(ValueError, match="negative"):
        recorder.record_many("all", [1.0, -0.5], [0.1, 0.1])
    with pytest.raises(ValueError, match="same length"):
        recorder.record_many("all", [1.0], [0.1, 0.2])
    recorder.record_many("all", [], [])
    assert recorder.scope_names() == []


def test_an_interval_flushed_many_times_is_consolidated_exactly() -> None:
    rng = random.Random(3)
    recorder, values = Recorder(), []
    for _ in range(40):  # more flushes into one interval than it keeps chunks of
        batch = [int(rng.expovariate(1 / 800)) for _ in range(25)]
        values += batch
        recorder.record_many("all", [0.5] * len(batch), [v / 1_000_000 for v in batch])
        recorder.scope("all", 1.0)  # reading flushes
    [interval] = recorder.intervals("all")
    assert_same(interval.histogram, reference(values))
    assert_same(recorder.scope("all", 1.0).histogram, reference(values))
