"""Every report plot renders a valid PNG of the house width, without warnings."""

from __future__ import annotations

import math
import random
import struct
from pathlib import Path

import pytest

from harness.plots import (
    DPI,
    FIGSIZE_IN,
    FaultMark,
    RunIntervals,
    ServiceNode,
    SpectrumPanel,
    SpectrumSeries,
    Window,
    _layers,
    _percentile_label,
    plot_edge_heatmap,
    plot_latency_over_time,
    plot_latency_overlay,
    plot_percentile_spectrum,
    plot_throughput_and_errors,
    plot_topology,
    spectrum_points,
)
from harness.recorder import Interval, Recorder, new_histogram

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXPECTED_SIZE = (round(FIGSIZE_IN[0] * DPI), round(FIGSIZE_IN[1] * DPI))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"  # the first chunk, right after the 8-byte magic
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def intervals_with_a_fault_and_a_gap() -> list[Interval]:
    recorder = Recorder()
    rng = random.Random(4)
    for i in range(3000):
        at_s = i / 100
        if 22.0 <= at_s < 24.0:
            continue  # nothing completed: a gap
        slow = 10.0 <= at_s < 20.0
        latency_s = (0.1 if slow else 0.0) + rng.expovariate(1 / 0.004)
        recorder.record(["all"], at_s, latency_s, error=False)
    return recorder.intervals("all")


def test_latency_plot_is_a_png_of_the_house_size(tmp_path: Path) -> None:
    path = tmp_path / "latency.png"
    windows = [Window("slow-payments", "delay", 10.0, 20.0), Window("kill-b", "kill", 25.0, 26.5)]
    plot_latency_over_time(
        path, intervals_with_a_fault_and_a_gap(), windows, title="checkout: latency (all)"
    )
    assert EXPECTED_SIZE == (1500, 750)
    assert png_size(path) == EXPECTED_SIZE


def test_zero_latencies_of_simulate_mode_plot_without_warnings(tmp_path: Path) -> None:
    # Virtual time can give latencies of exactly 0, which a log axis cannot show.
    recorder = Recorder()
    for i in range(50):
        recorder.record(["all"], i / 10, 0.0 if i % 2 else 0.005, error=False)
    path = tmp_path / "latency.png"
    plot_latency_over_time(path, recorder.intervals("all"), [], title="simulate")
    assert png_size(path) == EXPECTED_SIZE


def test_no_intervals_give_an_empty_plot(tmp_path: Path) -> None:
    path = tmp_path / "latency.png"
    plot_latency_over_time(path, [], [Window("f", "abort", 0.0, 1.0)], title="nothing measured")
    assert png_size(path) == EXPECTED_SIZE


def test_spectrum_points_run_from_the_fastest_request_to_the_max_on_the_1_over_1_minus_p_axis() -> (
    None
):
    recorder = Recorder()
    for i in range(1000):
        recorder.record(["all"], 0.0, (i + 1) / 1e6 * 1000, error=False)  # 1 ms .. 1000 ms
    xs, ys = spectrum_points(recorder.scope("all", 1.0).histogram)
    assert xs[0] == 1.0  # p = 0
    assert xs[-1] == pytest.approx(1000.0)  # 1/(1-p) = n: the finest level 1000 requests resolve
    assert ys[0] == pytest.approx(1.0, rel=1e-3)
    assert ys[-1] == pytest.approx(1000.0, rel=1e-3)  # the max
    # At 1/(1-p) = x the value is the p-th percentile of 1 .. 1000 ms: x = 10 is p90 = 900 ms.
    for x, y in zip(xs[:-1], ys[:-1], strict=True):
        expected_ms = max(1, math.ceil(1000 * (1 - 1 / x) - 1e-9))
        assert y == pytest.approx(expected_ms, rel=2e-3), x
    assert len(xs) == 240


def test_spectrum_of_an_empty_histogram_has_no_points() -> None:
    assert spectrum_points(new_histogram()) == ([], [])


def test_percentile_ticks_read_as_nines() -> None:
    assert [_percentile_label(x) for x in (1.0, 10.0, 100.0, 1000.0, 1e4)] == [
        "0%", "90%", "99%", "99.9%", "99.99%",
    ]  # fmt: skip


def test_every_report_plot_is_a_png_of_the_house_width(tmp_path: Path) -> None:
    intervals = intervals_with_a_fault_and_a_gap()
    windows = [Window("slow", "delay", 10.0, 20.0), Window("fails", "abort", 12.0, 14.0)]
    histogram = Recorder()
    for interval in intervals:
        histogram.add_interval("all", interval.index, interval.histogram, errors=interval.errors)
    total = histogram.scope("all", 30.0).histogram
    plot_percentile_spectrum(
        tmp_path / "one.png",
        [SpectrumPanel("phases", (SpectrumSeries("all", total, "#444444"),))],
        title="spectrum",
    )
    plot_percentile_spectrum(
        tmp_path / "four.png",
        [
            SpectrumPanel(name, (SpectrumSeries("A", total, "#1f77b4"),
                                 SpectrumSeries("B", new_histogram(), "#ff7f0e", "--")))
            for name in ("all", "baseline", "fault", "recovery")
        ],
        title="A vs B",
    )  # fmt: skip
    plot_throughput_and_errors(tmp_path / "tp.png", intervals, windows, title="throughput")
    plot_throughput_and_errors(
        tmp_path / "tp-old.png", intervals, windows, title="throughput", errors_known=False
    )
    plot_latency_overlay(
        tmp_path / "overlay.png",
        [RunIntervals("A", intervals, "#1f77b4"), RunIntervals("B", intervals[5:], "#ff7f0e")],
        windows,
        title="overlay",
    )
    for name in ("one", "four", "tp", "tp-old", "overlay"):
        assert png_size(tmp_path / f"{name}.png") == EXPECTED_SIZE, name


def test_heat_map_and_topology_keep_the_width_and_size_their_height_to_the_content(
    tmp_path: Path,
) -> None:
    recorder = Recorder()
    for i in range(300):
        recorder.record(["edge=a->b"], i / 10, 0.01, error=10.0 <= i / 10 < 15.0)
    plot_edge_heatmap(tmp_path / "edges.png", [("a->b", recorder.intervals("edge=a->b"))],
                      title="edges")  # fmt: skip
    width, height = png_size(tmp_path / "edges.png")
    assert width == EXPECTED_SIZE[0]
    assert height < EXPECTED_SIZE[1]

    services = [ServiceNode("frontend", 2, ("checkout",)), ServiceNode("checkout", 3,
                ("payments", "inventory")), ServiceNode("payments", 9, ()),
                ServiceNode("inventory", 1, ())]  # fmt: skip
    faults = [FaultMark("slow", "delay", "payments"), FaultMark("p1", "abort", "payments/1"),
              FaultMark("cut", "partition", "checkout->inventory")]  # fmt: skip
    plot_topology(tmp_path / "topology.png", services, faults, entry="frontend", title="t")
    width, height = png_size(tmp_path / "topology.png")
    assert width == EXPECTED_SIZE[0]
    assert height <= EXPECTED_SIZE[1]


def test_topology_columns_follow_the_longest_call_path() -> None:
    services = [ServiceNode("a", 1, ("b", "c")), ServiceNode("b", 1, ("c",)),
                ServiceNode("c", 1, ()), ServiceNode("lonely", 1, ())]  # fmt: skip
    # c is called by a (column 1) and by b (column 2), so it sits right of both.
    assert _layers(services, "a") == {"a": 1, "b": 2, "c": 3, "lonely": 1, "loadgen": 0}


def test_pngs_are_palette_images_a_third_of_the_rgba_size(tmp_path: Path) -> None:
    path = tmp_path / "latency.png"
    plot_latency_over_time(path, intervals_with_a_fault_and_a_gap(), [], title="size")
    data = path.read_bytes()
    assert data[25] == 3  # IHDR colour type 3: indexed colour
    assert len(data) < 40_000
