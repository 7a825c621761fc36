"""The .hlog and .hgrm writers, checked by reading back with the hdrhistogram package and ours."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
from hypothesis import given
from hypothesis import strategies as st

from harness.hdrlog import decode_tag, encode_tag, read_hlog, write_hgrm, write_hlog
from harness.recorder import Recorder, new_histogram

START_EPOCH_S = 1_763_000_000.25
SCOPES = ("all", "phase=fault", "service=a,edge=a->b")


def sample_recorder() -> Recorder:
    """Three scopes over five seconds, nothing recorded in the third one, some errors."""
    recorder = Recorder()
    rng = random.Random(5)
    for i in range(2500):
        at_s = i / 500
        if 2.0 <= at_s < 3.0:
            continue
        scopes = ["all", "service=a,edge=a->b"] + (["phase=fault"] if at_s >= 3.0 else [])
        recorder.record(scopes, at_s, rng.expovariate(1 / 0.004), error=i % 9 == 0)
    return recorder


def read_with_package(path: Path) -> tuple[float, list[HdrHistogram]]:
    reader = HistogramLogReader(str(path), new_histogram())
    try:
        histograms = []
        while (histogram := reader.get_next_interval_histogram()) is not None:
            histograms.append(histogram)
        return reader.get_start_time_sec(), histograms
    finally:
        reader.close()


def test_hlog_header_follows_format_1_3(tmp_path: Path) -> None:
    path = tmp_path / "latency.hlog"
    write_hlog(path, sample_recorder(), start_epoch_s=START_EPOCH_S)
    assert path.read_text().splitlines()[:4] == [
        "#[Histogram log format version 1.3]",
        "#[StartTime: 1763000000.250 (seconds since epoch), 2025-11-13T02:13:20.250+00:00]",
        "#[BaseTime: 1763000000.250 (seconds since epoch)]",
        '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"',
    ]


def test_hlog_lines_are_ordered_by_interval_then_scope(tmp_path: Path) -> None:
    path = tmp_path / "latency.hlog"
    write_hlog(path, sample_recorder(), start_epoch_s=START_EPOCH_S)
    keys = [tuple(line.split(",")[:2]) for line in path.read_text().splitlines()[4:]]
    assert keys == [
        ("Tag=all", "0.000"),
        ("Tag=service=a;edge=a->b", "0.000"),
        ("Tag=all", "1.000"),
        ("Tag=service=a;edge=a->b", "1.000"),
        ("Tag=all", "2.000"),
        ("Tag=service=a;edge=a->b", "2.000"),
        ("Tag=all", "3.000"),
        ("Tag=phase=fault", "3.000"),
        ("Tag=service=a;edge=a->b", "3.000"),
        ("Tag=all", "4.000"),
        ("Tag=phase=fault", "4.000"),
        ("Tag=service=a;edge=a->b", "4.000"),
    ]


def test_package_reader_reads_back_tags_times_counts_and_percentiles(tmp_path: Path) -> None:
    recorder = sample_recorder()
    path = tmp_path / "latency.hlog"
    write_hlog(path, recorder, start_epoch_s=START_EPOCH_S)
    start_s, histograms = read_with_package(path)
    assert start_s == START_EPOCH_S
    expected = sorted(
        ((interval.index, name), interval)
        for name in SCOPES
        for interval in recorder.intervals(name)
    )
    assert len(histograms) == len(expected)
    for histogram, ((index, name), interval) in zip(histograms, expected, strict=True):
        assert decode_tag(histogram.get_tag()) == name
        # Absolute times in ms: the base time is applied once, not twice.
        assert histogram.get_start_time_stamp() == pytest.approx((START_EPOCH_S + index) * 1000)
        assert histogram.get_end_time_stamp() == pytest.approx((START_EPOCH_S + index + 1) * 1000)
        assert histogram.get_total_count() == interval.requests
        assert histogram.get_max_value() == interval.histogram.get_max_value()
        for percentile in (50.0, 90.0, 99.0, 99.9):
            assert histogram.get_value_at_percentile(
                percentile
            ) == interval.histogram.get_value_at_percentile(percentile)


def test_package_reader_finds_relative_times_for_any_start(tmp_path: Path) -> None:
    # Without the BaseTime line the package would guess absolute timestamps for a start time
    # under a year after the epoch (such as a monotonic clock reading) and get offsets wrong.
    recorder = Recorder()
    recorder.record(["all"], 7.5, 0.001, error=False)
    path = tmp_path / "latency.hlog"
    write_hlog(path, recorder, start_epoch_s=1234.5)
    start_s, [histogram] = read_with_package(path)
    assert start_s == 1234.5
    assert histogram.get_start_time_stamp() == pytest.approx((1234.5 + 7.0) * 1000)


def test_interval_max_is_in_ms_and_not_floored(tmp_path: Path) -> None:
    recorder = Recorder()
    recorder.record(["all"], 0.0, 0.0015, error=False)
    path = tmp_path / "latency.hlog"
    write_hlog(path, recorder, start_epoch_s=START_EPOCH_S)
    [line] = path.read_text().splitlines()[4:]
    assert line.split(",")[:4] == ["Tag=all", "0.000", "1.000", "1.500"]


def test_our_reader_round_trips_scopes_and_intervals(tmp_path: Path) -> None:
    recorder = sample_recorder()
    path = tmp_path / "latency.hlog"
    write_hlog(path, recorder, start_epoch_s=START_EPOCH_S)
    back = read_hlog(path)
    assert list(back) == sorted(SCOPES)
    for name in SCOPES:
        original = recorder.intervals(name)
        assert [(i.index, i.start_s, i.end_s, i.requests) for i in back[name]] == [
            (i.index, i.start_s, i.end_s, i.requests) for i in original
        ]
        assert all(interval.errors == 0 for interval in back[name])
        for read, written in zip(back[name], original, strict=True):
            assert read.histogram.encode() == written.histogram.encode()
            assert read.max_ms == written.max_ms
            assert read.percentile_ms(99.0) == written.percentile_ms(99.0)


def test_our_reader_names_the_line_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "latency.hlog"
    path.write_text("#[Histogram log format version 1.3]\n0.000,1.000,0.000,HISTFAAA\n")
    with pytest.raises(ValueError, match=r"latency\.hlog:2: .*Tag="):
        read_hlog(path)


@given(st.text(min_size=1))
def test_tags_round_trip_and_hold_no_delimiter(scope: str) -> None:
    tag = encode_tag(scope)
    assert decode_tag(tag) == scope
    assert not re.search(r"[,\s]", tag)


def test_tags_read_well_for_usual_scope_names() -> None:
    assert encode_tag("service=a,edge=a->b") == "service=a;edge=a->b"
    assert encode_tag("a;b c%") == "a%3Bb%20c%25"
    with pytest.raises(ValueError, match="empty"):
        encode_tag("")


def parse_hgrm(text: str) -> tuple[list[tuple[float, float, int]], list[str]]:
    rows, footer = [], []
    for line in text.splitlines()[2:]:
        if line.startswith("#"):
            footer.append(line)
        else:
            value, percentile, count, *_ = line.split()
            rows.append((float(value), float(percentile), int(count)))
    return rows, footer


def test_hgrm_steps_follow_hdrhistograms_percentile_ladder(tmp_path: Path) -> None:
    # 1..1000 us, one each: every bucket is one microsecond wide, so each step is exact.
    histogram = new_histogram()
    for value in range(1, 1001):
        histogram.record_value(value)
    path = tmp_path / "all.hgrm"
    write_hgrm(path, histogram)
    rows, _ = parse_hgrm(path.read_text())
    assert [percentile for _, percentile, _ in rows[:13]] == [
        0.0,
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
        0.55,
        0.6,
        0.65,
        0.7,
        0.75,
        0.775,
        0.8,
    ]
    for value_ms, percentile, count in rows:
        # The first value whose cumulative share reaches the level, as Java reports it.
        expected = max(1, -(-round(percentile * 10**12) * 1000 // 10**12))
        assert (value_ms, count) == (expected / 1000, expected)
    assert rows[-1] == (1.0, 1.0, 1000)


def test_hgrm_layout_and_footer_match_hdrhistogram(tmp_path: Path) -> None:
    rng = random.Random(9)
    values = [int(rng.lognormvariate(8, 1.5)) for _ in range(5000)]
    histogram = new_histogram()
    for value in values:
        histogram.record_value(value)
    path = tmp_path / "all.hgrm"
    write_hgrm(path, histogram)
    text = path.read_text()
    package = io.BytesIO()
    histogram.output_percentile_distribution(package, 1000.0)
    package_lines = package.getvalue().decode().splitlines()
    lines = text.splitlines()
    assert lines[:2] == package_lines[:2]  # the column header and the blank line after it
    assert lines[-1] == package_lines[-1]  # buckets and sub-buckets
    for line in lines[2:-4]:
        assert len(line) == len(package_lines[2])
        assert re.fullmatch(r" *\d+\.\d{3} \d\.\d{12} +\d+ +\d+\.\d{2}", line)
    assert re.fullmatch(r" *\d+\.\d{3} 1\.000000000000 +5000", lines[-4])
    rows, footer = parse_hgrm(text)
    ordered = sorted(values)
    for value_ms, percentile, count in rows:
        rank = max(1, count)
        assert value_ms == histogram.get_highest_equivalent_value(ordered[rank - 1]) / 1000
        assert count >= percentile * len(values) - 1e-6
    assert rows[-1][0] == histogram.get_max_value() / 1000
    mean, stddev = histogram.get_mean_value() / 1000, histogram.get_stddev() / 1000
    assert footer == [
        f"#[Mean    = {mean:12.3f}, StdDeviation   = {stddev:12.3f}]",
        f"#[Max     = {histogram.get_max_value() / 1000:12.3f}, Total count    = {5000:12d}]",
        f"#[Buckets = {22:12d}, SubBuckets     = {2048:12d}]",
    ]


def test_hgrm_of_an_empty_histogram_has_no_steps(tmp_path: Path) -> None:
    path = tmp_path / "none.hgrm"
    write_hgrm(path, new_histogram())
    rows, footer = parse_hgrm(path.read_text())
    assert rows == []
    assert footer[1] == f"#[Max     = {0.0:12.3f}, Total count    = {0:12d}]"
