"""Report plots (DESIGN.md 4.3), drawn headless with matplotlib in one house style.

Figures are built with :class:`matplotlib.figure.Figure` directly rather than through pyplot: no
GUI backend is ever chosen (saving a PNG uses Agg), and no figure is left registered in pyplot's
global state, so nothing has to be closed and nothing leaks when a run renders many plots.

Every plot is a function ``plot_<what>(path, data..., *, title)`` that writes one PNG of
:data:`FIGSIZE_IN` at :data:`DPI`, labels every axis with its unit and draws time on the same
axis: seconds since the start of measurement, which is where the fault windows are given too.
PNGs are stored as 8-bit palette images (:func:`_save`): the plots use a handful of flat colours,
so this keeps them legible while making them about three times smaller, which is what keeps a
long run's report folder small.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hdrh.histogram import HdrHistogram
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    LogLocator,
    NullLocator,
    StrMethodFormatter,
)
from matplotlib.transforms import blended_transform_factory
from PIL import Image

from harness.recorder import Interval, value_at_percentile_us

__all__ = [
    "DPI",
    "FIGSIZE_IN",
    "FaultMark",
    "RunIntervals",
    "ServiceNode",
    "SpectrumPanel",
    "SpectrumSeries",
    "Window",
    "plot_edge_heatmap",
    "plot_latency_over_time",
    "plot_latency_overlay",
    "plot_percentile_spectrum",
    "plot_throughput_and_errors",
    "plot_topology",
    "spectrum_points",
]

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
_THROUGHPUT_COLOUR = "#1f77b4"
_ERROR_COLOUR = "#d62728"
_TEXT_COLOUR = "#333333"
_LABEL_CHAR_FRACTION = 0.0085
"""About how much of the axes' width one character of a window label takes (8 pt font)."""
_LABEL_LINE_FRACTION = 0.045
"""The height of one line of window labels, as a fraction of the axes' height."""
_LOG_SCALE_SPREAD = 30.0
"""Use a log latency axis when the plotted values span at least this ratio (and none is 0)."""
_SPECTRUM_POINTS = 240
"""Points per spectrum curve, spread evenly on the log 1/(1-p) axis."""
_PALETTE_COLOURS = 256


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of the measurement to shade on time plots, such as a fault being applied."""

    name: str
    kind: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class SpectrumSeries:
    """One curve of a percentile spectrum: a latency histogram (microseconds) and its look."""

    label: str
    histogram: HdrHistogram
    colour: str
    linestyle: str = "-"


@dataclass(frozen=True, slots=True)
class SpectrumPanel:
    """One panel of a spectrum figure (a phase, say) and the curves drawn in it."""

    title: str
    series: tuple[SpectrumSeries, ...]


@dataclass(frozen=True, slots=True)
class RunIntervals:
    """One run's intervals of a scope, for overlays: its label, intervals and colour."""

    label: str
    intervals: Sequence[Interval]
    colour: str


@dataclass(frozen=True, slots=True)
class ServiceNode:
    """A service of the topology drawing: its replicas and the services it calls."""

    name: str
    replicas: int
    calls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FaultMark:
    """A fault to mark on the topology drawing: ``target`` is ``svc``, ``svc/1`` or ``a->b``."""

    name: str
    kind: str
    target: str


def _new_figure(
    title: str, *, rows: int = 1, columns: int = 1, height_in: float = FIGSIZE_IN[1]
) -> tuple[Figure, list[Axes]]:
    """Return a figure and its axes (row by row) in the house style."""
    figure = Figure(figsize=(FIGSIZE_IN[0], height_in), dpi=DPI, layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False, sharex=rows > 1 and columns == 1)
    axes_list: list[Axes] = [axes for row in grid for axes in row]
    if len(axes_list) == 1:
        axes_list[0].set_title(title, loc="left", fontsize=12)
    else:
        figure.suptitle(title, x=0.01, ha="left", fontsize=12)
    for axes in axes_list:
        axes.grid(visible=True, which="major", color="#dddddd", linewidth=0.8)
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
    return figure, axes_list


def _save(figure: Figure, path: Path) -> None:
    """Write ``figure`` as an 8-bit palette PNG (see the module docstring for why)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    buffer.seek(0)
    with Image.open(buffer) as image:
        # Median cut keeps the flat colours (the fast octree turned grey grid lines pink); no
        # dithering, which would speckle the shaded windows. The figure is opaque: RGB is exact.
        palette = image.convert("RGB").quantize(
            _PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        palette.save(path, format="PNG", optimize=True)


def _shade_windows(axes: Axes, windows: Sequence[Window], *, labels: bool = True) -> None:
    """Shade each window over the full height and label it ``name (kind)`` at the top.

    Call it once the data is drawn (it reads the x limits). A label that would run into the one
    before it goes one line lower, so that overlapping faults keep readable names.
    """
    top = blended_transform_factory(axes.transData, axes.transAxes)
    left, right = axes.get_xlim()
    span = (right - left) or 1.0
    line_ends: list[float] = []  # per label line, where its last label ends (axes fraction)
    for window in sorted(windows, key=lambda window: window.start_s):
        axes.axvspan(window.start_s, window.end_s, color=_WINDOW_COLOUR, alpha=0.12, linewidth=0)
        if labels:
            text = f" {window.name} ({window.kind})"
            start = (window.start_s - left) / span
            line = next((n for n, end in enumerate(line_ends) if end <= start), len(line_ends))
            if line == len(line_ends):
                line_ends.append(0.0)
            line_ends[line] = start + len(text) * _LABEL_CHAR_FRACTION
            axes.text(
                window.start_s,
                0.98 - _LABEL_LINE_FRACTION * line,
                text,
                transform=top,
                ha="left",
                va="top",
                fontsize=8,
                color=_WINDOW_COLOUR,
                clip_on=True,
            )


def _legend_outside(axes: Axes) -> None:
    """Put the legend right of the plot, so that it never hides a window's label or the data."""
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)


def _step_edges(intervals: Sequence[Interval]) -> list[float]:
    """Return the x values of a step plot: every interval's start, then the last one's end."""
    edges = [interval.start_s for interval in intervals]
    if intervals:
        edges.append(intervals[-1].end_s)
    return edges


def _steps(values: Sequence[float]) -> list[float]:
    """Repeat the last value, so that ``steps-post`` draws the last interval to its end."""
    return [*values, values[-1]] if values else []


def plot_latency_over_time(
    path: Path, intervals: Sequence[Interval], windows: Sequence[Window], *, title: str
) -> None:
    """Plot p50, p90, p99 and max latency per interval, with ``windows`` shaded, as a PNG.

    Each value is drawn as a step over its interval. Intervals without requests leave a gap
    instead of a line bridging them.
    """
    figure, (axes,) = _new_figure(title)
    edges = _step_edges(intervals)
    plotted: list[float] = []
    for label, percentile, colour, width in _SERIES:
        values = [_latency_ms(interval, percentile) for interval in intervals]
        plotted += [value for value in values if not math.isnan(value)]
        # steps-post draws each value from its interval's start to the next edge.
        axes.plot(
            edges,
            _steps(values),
            drawstyle="steps-post",
            color=colour,
            linewidth=width,
            label=label,
        )
    _shade_windows(axes, windows)
    _scale_latency_axis(axes, plotted)
    axes.set_xlabel("time since start of measurement (s)")
    axes.set_ylabel("latency (ms)")
    _legend_outside(axes)
    _save(figure, path)


def plot_latency_overlay(
    path: Path, runs: Sequence[RunIntervals], windows: Sequence[Window], *, title: str
) -> None:
    """Overlay the per-interval p50 (thin, dashed) and p99 (thick) of several runs, as a PNG.

    Every run's time axis starts at its start of measurement, so the same second of two runs of
    one experiment lines up, and so do their fault windows.
    """
    figure, (axes,) = _new_figure(title)
    plotted: list[float] = []
    for run in runs:
        edges = _step_edges(run.intervals)
        for label, percentile, style, width in (("p99", 99.0, "-", 1.6), ("p50", 50.0, "--", 1.1)):
            values = [_latency_ms(interval, percentile) for interval in run.intervals]
            plotted += [value for value in values if not math.isnan(value)]
            axes.plot(
                edges,
                _steps(values),
                drawstyle="steps-post",
                color=run.colour,
                linestyle=style,
                linewidth=width,
                label=f"{run.label} {label}",
            )
    _shade_windows(axes, windows)
    _scale_latency_axis(axes, plotted)
    axes.set_xlabel("time since start of measurement (s)")
    axes.set_ylabel("latency (ms)")
    _legend_outside(axes)
    _save(figure, path)


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
        # No minor ticks: the grid of 1-2-5 majors reads well, and laying out a log axis's
        # dozens of minor ticks was most of the time a figure took.
        axes.yaxis.set_minor_locator(NullLocator())
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


def spectrum_points(histogram: HdrHistogram) -> tuple[list[float], list[float]]:
    """Return the ``(1/(1-p), latency ms)`` points of a histogram's percentile spectrum.

    The points are spread evenly in log 1/(1-p) from p = 0 (the fastest request) to 1/(1-p) =
    n, the finest level n requests resolve, where the curve ends at the max. Empty: no points.
    """
    total = int(histogram.get_total_count())
    if total == 0:
        return [], []
    xs = np.logspace(0.0, math.log10(total), num=_SPECTRUM_POINTS if total > 1 else 1).tolist()
    ys = [value_at_percentile_us(histogram, 100.0 * (1.0 - 1.0 / x)) / 1000.0 for x in xs[:-1]]
    ys.append(int(histogram.get_max_value()) / 1000.0)
    return xs, ys


def _percentile_label(x: float, _position: object = None) -> str:
    """Label a 1/(1-p) tick with its percentile: 1 -> 0%, 10 -> 90%, 1000 -> 99.9%."""
    if x < 1.0:
        return ""
    percentile = 100.0 * (1.0 - 1.0 / x)
    decimals = max(0, round(math.log10(x)) - 2)
    return f"{percentile:.{decimals}f}%"


def plot_percentile_spectrum(path: Path, panels: Sequence[SpectrumPanel], *, title: str) -> None:
    """Plot percentile spectra on HdrHistogram's log 1/(1-p) axis, one panel each, as a PNG.

    The x axis reads 0%, 90%, 99%, 99.9%, ...: each decade is one more nine, so the tail that
    averages hide takes as much room as the median. Up to two panels share a row.
    """
    columns = 1 if len(panels) <= 1 else 2
    rows = max(1, math.ceil(len(panels) / columns))
    figure, axes_list = _new_figure(title, rows=rows, columns=columns)
    decades = 1
    for axes, panel in zip(axes_list, panels, strict=False):
        plotted: list[float] = []
        for series in panel.series:
            xs, ys = spectrum_points(series.histogram)
            plotted += ys
            count = int(series.histogram.get_total_count())
            label = f"{series.label} ({count:,} requests)" if xs else f"{series.label} (none)"
            axes.plot(
                xs, ys, color=series.colour, linestyle=series.linestyle, linewidth=1.5, label=label
            )
            if xs:
                decades = max(decades, math.ceil(math.log10(max(xs[-1], 10.0))))
        if len(panels) > 1:
            axes.set_title(panel.title, loc="left", fontsize=10)
        _scale_latency_axis(axes, plotted)
        axes.set_ylabel("latency (ms)")
        axes.legend(loc="upper left", fontsize=8, frameon=False)
    for axes in axes_list:
        axes.set_xscale("log")
        axes.set_xlim(1.0, 10.0**decades)
        axes.xaxis.set_major_locator(FixedLocator([10.0**d for d in range(decades + 1)]))
        axes.xaxis.set_major_formatter(FuncFormatter(_percentile_label))
        axes.xaxis.set_minor_locator(NullLocator())
        axes.set_xlabel("percentile (log 1/(1-p) axis)")
    for axes in axes_list[len(panels) :]:
        axes.set_visible(False)
    _save(figure, path)


def plot_throughput_and_errors(
    path: Path,
    intervals: Sequence[Interval],
    windows: Sequence[Window],
    *,
    title: str,
    errors_known: bool = True,
) -> None:
    """Plot completed requests per second above the error rate per interval, as a PNG.

    ``errors_known`` False (a report from before per-interval errors were stored) writes that
    in the error panel instead of drawing a misleading flat 0 %.
    """
    figure, (top, bottom) = _new_figure(title, rows=2)
    edges = _step_edges(intervals)
    throughput = [i.requests / (i.end_s - i.start_s) for i in intervals]
    top.plot(
        edges,
        _steps(throughput),
        drawstyle="steps-post",
        color=_THROUGHPUT_COLOUR,
        linewidth=1.5,
        label="completed",
    )
    top.set_ylim(0.0, max(throughput, default=1.0) * 1.25 or 1.0)
    top.set_ylabel("throughput (req/s)")
    _shade_windows(top, windows)
    if errors_known:
        rates = [100.0 * i.errors / i.requests if i.requests else math.nan for i in intervals]
        bottom.plot(
            edges,
            _steps(rates),
            drawstyle="steps-post",
            color=_ERROR_COLOUR,
            linewidth=1.5,
            label="errors",
        )
        highest = max((rate for rate in rates if not math.isnan(rate)), default=0.0)
        # An error-free run still shows a 0..1 % axis, so that "flat at zero" is visible.
        bottom.set_ylim(-0.02 * max(highest, 1.0), max(highest, 1.0) * 1.2)
    else:
        bottom.text(
            0.5,
            0.5,
            "per-interval errors are not stored in this report",
            transform=bottom.transAxes,
            ha="center",
            va="center",
            fontsize=9,
            color=_TEXT_COLOUR,
        )
        bottom.set_yticks([])
    bottom.set_ylabel("error rate (%)")
    bottom.set_xlabel("time since start of measurement (s)")
    _shade_windows(bottom, windows, labels=False)
    _save(figure, path)


_HEAT = LinearSegmentedColormap.from_list("meshchaos_heat", ["#ffffff", "#fcbba1", "#a50f15"])


def plot_edge_heatmap(
    path: Path, rows: Sequence[tuple[str, Sequence[Interval]]], *, title: str
) -> None:
    """Plot a heat map of the error rate per interval, one row per edge scope, as a PNG.

    A cell without requests is left grey, so that "no traffic" does not read as "no errors".
    """
    figure, (axes,) = _new_figure(title, height_in=min(FIGSIZE_IN[1], 1.6 + 0.5 * len(rows)))
    axes.grid(visible=False)
    length = min((i.end_s - i.start_s for _, ivs in rows for i in ivs), default=1.0)
    end = max((i.end_s for _, ivs in rows for i in ivs), default=length)
    columns = max(1, round(end / length))
    cells = np.full((len(rows), columns), np.nan)
    for row, (_, intervals) in enumerate(rows):
        for interval in intervals:
            if interval.requests and 0 <= interval.index < columns:
                cells[row, interval.index] = 100.0 * interval.errors / interval.requests
    axes.set_facecolor("#e6e6e6")
    image = axes.imshow(
        np.ma.masked_invalid(cells),
        aspect="auto",
        interpolation="nearest",
        cmap=_HEAT,
        vmin=0.0,
        vmax=max(1.0, float(np.nanmax(cells)) if np.isfinite(cells).any() else 1.0),
        extent=(0.0, columns * length, len(rows) - 0.5, -0.5),
    )
    axes.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=8)
    axes.set_xlabel("time since start of measurement (s)")
    figure.colorbar(image, ax=axes, label="error rate (%)", shrink=0.9)
    _save(figure, path)


# --- topology --------------------------------------------------------------------------------

_LOADGEN = "loadgen"
_BOX_W, _BOX_H = 2.2, 1.0
_COLUMN_STEP, _ROW_STEP = 3.4, 1.7
_NODE_FILL, _NODE_EDGE = "#eef4fb", "#1f77b4"
_LABEL_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"}


def _layers(services: Sequence[ServiceNode], entry: str | None) -> dict[str, int]:
    """Place each service in the column after its deepest caller (the loadgen is column 0).

    The calls form no cycle (the experiment loader refuses them), so the longest path is
    defined; a service nobody calls sits in column 1, like the load target.
    """
    callers: dict[str, list[str]] = {service.name: [] for service in services}
    for service in services:
        for callee in service.calls:
            callers.setdefault(callee, []).append(service.name)
    column: dict[str, int] = {}

    def place(name: str, seen: frozenset[str]) -> int:
        if name not in column:
            above = [place(c, seen | {name}) for c in callers.get(name, []) if c not in seen]
            column[name] = 1 + max(above, default=0)
        return column[name]

    for name in callers:
        place(name, frozenset())
    if entry is not None:
        column[_LOADGEN] = 0
    return column


def _fault_targets(faults: Sequence[FaultMark]) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Split fault marks into labels per service or edge, and replica indices per service/N."""
    labels: dict[str, list[str]] = {}
    replicas: dict[str, int] = {}
    for fault in faults:
        target = fault.target.strip()
        key = target
        if "->" not in target and "/" in target:
            service, _, index = target.partition("/")
            key = service
            if index.isdigit():
                replicas[f"{service}/{index}"] = int(index)
        where = f" on {target}" if key != target else ""  # a replica: say which
        labels.setdefault(key, []).append(f"{fault.name} ({fault.kind}){where}")
    return labels, replicas


def plot_topology(
    path: Path,
    services: Sequence[ServiceNode],
    faults: Sequence[FaultMark],
    *,
    entry: str | None,
    title: str,
) -> None:
    """Draw the services, their replicas, who calls whom and the faults on them, as a PNG.

    Calls go left to right from the load generator to ``entry``. A box per service holds a
    square per replica; a fault on a service outlines its box in red, one on a replica fills that
    replica's square, and one on an edge draws that arrow red and dashed. Each fault is named
    next to what it hits. The figure is as wide as the others and only as tall as the widest
    column of services needs, so that a small topology is not lost in white space.
    """
    column = _layers(services, entry)
    by_column: dict[int, list[str]] = {}
    for name in sorted(column, key=lambda name: (column[name], name)):
        by_column.setdefault(column[name], []).append(name)
    tallest = max((len(names) for names in by_column.values()), default=1)
    height_in = min(FIGSIZE_IN[1], 1.6 + 1.1 * tallest)
    figure, (axes,) = _new_figure(title, height_in=height_in)
    axes.grid(visible=False)
    axes.set_axis_off()
    centre: dict[str, tuple[float, float]] = {}
    for number, names in by_column.items():
        for row, name in enumerate(names):
            offset = (len(names) - 1) / 2.0 - row
            centre[name] = (number * _COLUMN_STEP, offset * _ROW_STEP)
    labels, faulty_replicas = _fault_targets(faults)
    replica_count = {service.name: service.replicas for service in services}
    whole = {fault.target.strip() for fault in faults}
    for name, (x, y) in centre.items():
        replicas = {i for key, i in faulty_replicas.items() if key.startswith(f"{name}/")}
        _draw_node(
            axes,
            name,
            x,
            y,
            replica_count.get(name),
            labels.get(name, []),
            whole_service=name in whole,
            faulty_replicas=replicas,
        )
    edges = [
        (service.name, callee) for service in services for callee in dict.fromkeys(service.calls)
    ]
    if entry is not None and entry in centre:
        edges.insert(0, (_LOADGEN, entry))
    for source, target in edges:
        if source in centre and target in centre:
            _draw_edge(axes, centre[source], centre[target], labels.get(f"{source}->{target}", []))
    columns = max(by_column, default=0)
    axes.set_xlim(-_BOX_W, columns * _COLUMN_STEP + _BOX_W * 1.2)
    half_height = max(tallest - 1, 1) / 2.0 * _ROW_STEP + _BOX_H * 1.6
    axes.set_ylim(-half_height, half_height)
    _save(figure, path)


def _draw_node(
    axes: Axes,
    name: str,
    x: float,
    y: float,
    replicas: int | None,
    faults: list[str],
    *,
    whole_service: bool,
    faulty_replicas: set[int],
) -> None:
    """Draw one service box (or the load generator) with its replica squares and fault labels."""
    loadgen = replicas is None
    edge = _WINDOW_COLOUR if whole_service else _NODE_EDGE
    axes.add_patch(
        FancyBboxPatch(
            (x - _BOX_W / 2, y - _BOX_H / 2),
            _BOX_W,
            _BOX_H,
            boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor="#f2f2f2" if loadgen else _NODE_FILL,
            edgecolor="#888888" if loadgen else edge,
            linewidth=2.2 if whole_service else 1.2,
        )
    )
    axes.text(
        x, y + 0.22, name, ha="center", va="center", fontsize=10, weight="bold", color=_TEXT_COLOUR
    )
    if replicas is not None:
        size, gap = 0.22, 0.08
        shown = min(replicas, 6)
        left = x - (shown * size + (shown - 1) * gap) / 2
        for index in range(shown):
            axes.add_patch(
                Rectangle(
                    (left + index * (size + gap), y - 0.32),
                    size,
                    size,
                    facecolor=_WINDOW_COLOUR if index in faulty_replicas else _NODE_EDGE,
                    edgecolor="none",
                )
            )
        more = f" (+{replicas - shown})" if replicas > shown else ""
        axes.text(
            x + _BOX_W / 2 - 0.08,
            y - 0.21,
            f"\u00d7{replicas}{more}",
            ha="right",
            va="center",
            fontsize=7,
            color=_TEXT_COLOUR,
        )
    for number, label in enumerate(faults):
        axes.text(
            x,
            y - _BOX_H / 2 - 0.15 - 0.25 * number,
            label,
            ha="center",
            va="top",
            fontsize=8,
            color=_WINDOW_COLOUR,
        )


def _draw_edge(
    axes: Axes, start: tuple[float, float], end: tuple[float, float], faults: list[str]
) -> None:
    """Draw a call arrow between two boxes; red and dashed, with labels, when faults act on it."""
    colour = _WINDOW_COLOUR if faults else "#555555"
    arrow = FancyArrowPatch(
        (start[0] + _BOX_W / 2, start[1]),
        (end[0] - _BOX_W / 2, end[1]),
        arrowstyle="-|>",
        mutation_scale=14,
        color=colour,
        linewidth=2.0 if faults else 1.2,
        linestyle="--" if faults else "-",
        shrinkA=2,
        shrinkB=2,
    )
    axes.add_patch(arrow)
    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    for number, label in enumerate(faults):
        axes.text(
            middle[0],
            middle[1] + 0.3 * number,
            label,
            ha="center",
            va="center",
            fontsize=8,
            color=_WINDOW_COLOUR,
            bbox=_LABEL_BOX,
        )
