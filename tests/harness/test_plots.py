"""The latency-over-time plot renders a valid PNG of the house size, without warnings."""

from __future__ import annotations

import random
import struct
from pathlib import Path

from harness.plots import DPI, FIGSIZE_IN, Window, plot_latency_over_time
from harness.recorder import Interval, Recorder

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
