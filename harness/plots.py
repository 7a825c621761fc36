"""Report plots (DESIGN.md 4.3), drawn headless with matplotlib in one house style.

Figures are built with :class:`matplotlib.figure.Figure` directly rather than through pyplot: no
GUI backend is ever chosen (saving a PNG uses Agg), and no figure is left registered in pyplot's
global state, so nothing has to be closed and nothing leaks when a run renders many plots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter
from matplotlib.transforms import blended_transform_factory

from harness.recorder import Interval

__all__ = ["DPI", "FIGSIZE_IN", "Window", "plot_latency_over_time"]

DPI = 150
"""Resolution of every PNG."""
FIGSIZE_IN = (10.0, 5.0)
"""Size of every figure in inches: 1500 x 750 pixels at :data:`DPI`."""

_SERIES = (
    # (label, percentile or None for the max, colour, line width)
    ("p50", 50.0, "#1f77b4", 1.6),
    ("p90", 90.0, "#2ca02c", 1.4),
    ("p99", 99.0, "#ff7f0e", 1.4),
    ("max", None, "#7f7f7f", 1.0),
)
_WINDOW_COLOUR = "#d62728"
_LOG_SCALE_SPREAD = 30.0
"""Use a log latency axis when the plotted values span at least this ratio (and none is 0)."""


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of the measurement to shade on time plots, such as a fault being applied."""

    name: str
    kind: str
    start_s: float
    end_s: float


def _new_figure(title: str) -> tuple[Figure, Axes]:
    """Return a figure and its single axes in the house style."""
    figure = Figure(figsize=FIGSIZE_IN, dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, loc="left", fontsize=12)
    axes.grid(visible=True, which="major", color="#dddddd", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _shade_windows(axes: Axes, windows: Sequence[Window]) -> None:
    """Shade each window over the full height and label it ``name (kind)`` at the top."""
    top = blended_transform_factory(axes.transData, axes.transAxes)
    for window in windows:
        axes.axvspan(window.start_s, window.end_s, color=_WINDOW_COLOUR, alpha=0.12, linewidth=0)
        axes.text(
            window.start_s,
            0.98,
            f" {window.name} ({window.kind})",
            transform=top,
            ha="left",
            va="top",
            fontsize=8,
            color=_WINDOW_COLOUR,
            clip_on=True,
        )


def plot_latency_over_time(
    path: Path, intervals: Sequence[Interval], windows: Sequence[Window], *, title: str
) -> None:
    """Plot p50, p90, p99 and max latency per interval, with ``windows`` shaded, as a PNG.

    Each value is drawn as a step over its interval. Intervals without requests leave a gap
    instead of a line bridging them.
    """
    figure, axes = _new_figure(title)
    edges = [interval.start_s for interval in intervals]
    if intervals:
        edges.append(intervals[-1].end_s)
    plotted: list[float] = []
    for label, percentile, colour, width in _SERIES:
        values = [_latency_ms(interval, percentile) for interval in intervals]
        plotted += [value for value in values if not math.isnan(value)]
        # steps-post draws each value from its interval's start to the next edge.
        axes.plot(
            edges,
            [*values, values[-1]] if values else [],
            drawstyle="steps-post",
            color=colour,
            linewidth=width,
            label=label,
        )
    _shade_windows(axes, windows)
    _scale_latency_axis(axes, plotted)
    axes.set_xlabel("time since start of measurement (s)")
    axes.set_ylabel("latency (ms)")
    # Outside the plot, so that it never hides a window's label or the data.
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    figure.savefig(path, format="png", dpi=DPI)


def _scale_latency_axis(axes: Axes, plotted: Sequence[float]) -> None:
    """Pick a log axis for widely spread latencies, else a linear one from 0; leave headroom.

    A log axis cannot show a latency of 0, which virtual time produces, so it needs every value
    positive. The headroom keeps the window labels at the top clear of the lines.
    """
    if plotted and min(plotted) > 0 and max(plotted) / min(plotted) >= _LOG_SCALE_SPREAD:
        axes.set_yscale("log")
        # 1, 2, 5, 10, 20, ... ms read better than powers of ten.
        axes.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        axes.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        axes.yaxis.set_minor_formatter(NullFormatter())
        bottom, top = axes.get_ylim()
        axes.set_ylim(bottom, top * 1.6)
    else:
        top = max(plotted, default=1.0) or 1.0
        # A little below 0, so that a p50 of exactly 0 is not hidden by the axis line.
        axes.set_ylim(-0.02 * top, 1.12 * top)


def _latency_ms(interval: Interval, percentile: float | None) -> float:
    """Return an interval's latency at ``percentile`` (None: the max) in ms, NaN when empty."""
    if interval.requests == 0:
        return math.nan
    if percentile is None:
        return interval.max_ms
    return interval.percentile_ms(percentile)
