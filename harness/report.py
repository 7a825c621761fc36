"""The report folder of a run (DESIGN.md 4.3): every file written from the summary and state.

``summary.json`` is written first, so that whatever fails later (a plot, say) the machine-
readable result is already on disk.

Everything a reader looks at (the plots, ``report.html``, ``summary.md``, ``junit.xml``) is
*rendered* from two stored files only: ``summary.json`` and ``latency.hlog``. A run renders from
its in-memory recorder; ``meshchaos report RUN_DIR`` (:func:`rerender`) rebuilds the same
recorder from the files with :func:`load_run` and renders again, so a report written by an older
version gets the current plots. Data a report predates is said to be missing, never invented:
a summary without per-interval errors draws no error-rate line, one without a topology no
topology drawing.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.hdrlog import read_hlog, write_hgrm, write_hlog
from harness.html import Plot, render_html
from harness.plots import (
    FaultMark,
    ServiceNode,
    SpectrumPanel,
    SpectrumSeries,
    Window,
    plot_edge_heatmap,
    plot_latency_over_time,
    plot_percentile_spectrum,
    plot_throughput_and_errors,
    plot_topology,
)
from harness.recorder import Recorder, new_histogram
from harness.summary import SCHEMA
from harness.verdict import render_markdown, write_junit

__all__ = [
    "PHASE_COLOURS",
    "ReportError",
    "StoredRun",
    "fault_windows",
    "hgrm_name",
    "load_run",
    "measured_s",
    "phase_scopes",
    "render_outputs",
    "report_command",
    "rerender",
    "write_experiment_yaml",
    "write_report",
]

PHASE_COLOURS = {
    "all": "#444444",
    "baseline": "#1f77b4",
    "fault": "#d62728",
    "recovery": "#2ca02c",
}
"""The colour of each phase in every plot and in report.html."""
_REQUIRED_KEYS = ("schema", "experiment", "phases", "faults", "scopes", "slos", "verdict")


class ReportError(Exception):
    """A report folder that cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class StoredRun:
    """A run read back from its report folder.

    ``latency`` is rebuilt from ``latency.hlog``, with each interval's errors from
    ``summary.json`` when it has them (``errors_known``); ``experiment_text`` is
    ``experiment.yaml`` as stored, ``None`` when the folder has none.
    """

    path: Path
    summary: Mapping[str, Any]
    latency: Recorder
    errors_known: bool
    experiment_text: str | None


def hgrm_name(scope: str) -> str:
    """Return the ``.hgrm`` file name of a scope: ``phase=fault.hgrm``, ``edge=a-b.hgrm``."""
    return re.sub(r"[^A-Za-z0-9=,._-]+", "-", scope) + ".hgrm"


def write_experiment_yaml(path: Path, document: Mapping[str, object]) -> None:
    """Write the experiment exactly as run (overrides and defaults resolved)."""
    path.write_text(yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True))


def fault_windows(summary: Mapping[str, Any], duration_s: float) -> list[Window]:
    """Return the fault windows to shade in plots, as they were really applied."""
    windows = []
    for fault in summary["faults"]:
        if fault["applied_at_s"] is None:
            continue
        end = fault["removed_at_s"] if fault["removed_at_s"] is not None else duration_s
        windows.append(Window(fault["name"], fault["kind"], fault["applied_at_s"], end))
    return windows


def measured_s(summary: Mapping[str, Any]) -> float:
    """Return how long the run measured (the ``all`` phase's end for reports without it)."""
    if "measured_s" in summary:
        return float(summary["measured_s"])
    return max((float(phase["end_s"]) for phase in summary["phases"]), default=0.0)


def write_report(
    run_dir: Path, summary: Mapping[str, Any], latency: Recorder, *, start_epoch_s: float
) -> None:
    """Write the report files of a run into ``run_dir``.

    That is ``summary.json``, ``latency.hlog``, one ``.hgrm`` per scope, then everything
    :func:`render_outputs` renders from them.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_hlog(run_dir / "latency.hlog", latency, start_epoch_s=start_epoch_s)
    for scope in latency.scope_names():
        write_hgrm(run_dir / hgrm_name(scope), latency.scope(scope, 0.0).histogram)
    experiment_file = run_dir / "experiment.yaml"
    render_outputs(
        run_dir,
        summary,
        latency,
        errors_known=True,
        experiment_text=experiment_file.read_text() if experiment_file.is_file() else None,
    )


def load_run(run_dir: Path) -> StoredRun:
    """Read a report folder's ``summary.json`` and ``latency.hlog``; ReportError says why not."""
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: not a report folder")
    summary_path = run_dir / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ReportError(f"{summary_path}: {error.strerror}") from error
    except ValueError as error:
        raise ReportError(f"{summary_path}: not valid JSON ({error})") from error
    if not isinstance(summary, dict):
        raise ReportError(f"{summary_path}: expected a JSON object")
    if summary.get("schema") != SCHEMA:
        raise ReportError(f"{summary_path}: schema is {summary.get('schema')!r}, not {SCHEMA!r}")
    missing = [key for key in _REQUIRED_KEYS if key not in summary]
    if missing:
        raise ReportError(f"{summary_path}: missing {', '.join(missing)}")
    hlog_path = run_dir / "latency.hlog"
    try:
        scopes = read_hlog(hlog_path)
    except OSError as error:
        raise ReportError(f"{hlog_path}: {error.strerror}") from error
    except ValueError as error:  # read_hlog names the file and line
        raise ReportError(str(error)) from error
    stored_errors = summary.get("intervals", {}).get("errors")
    errors_known = isinstance(stored_errors, dict)
    errors = _errors_by_interval(stored_errors if errors_known else {})
    length_s = summary.get("intervals", {}).get("length_s") or _interval_length(scopes)
    latency = Recorder(interval_s=length_s)
    for name, intervals in scopes.items():
        scope_errors = errors.get(name, {})
        for interval in intervals:
            latency.add_interval(
                name, interval.index, interval.histogram, errors=scope_errors.pop(interval.index, 0)
            )
        for index, count in sorted(scope_errors.items()):  # errors with no latency logged
            latency.add_interval(name, index, new_histogram(), errors=count)
    experiment_path = run_dir / "experiment.yaml"
    experiment_text = experiment_path.read_text() if experiment_path.is_file() else None
    return StoredRun(run_dir, summary, latency, errors_known, experiment_text)


def _interval_length(scopes: Mapping[str, list[Any]]) -> float:
    """Return the interval length of a log (1 s when it holds no interval)."""
    for intervals in scopes.values():
        if intervals:
            return float(intervals[0].end_s - intervals[0].start_s)
    return 1.0


def _errors_by_interval(stored: Mapping[str, Any]) -> dict[str, dict[int, int]]:
    """Return ``{scope: {interval index: errors}}`` from the summary's sparse pairs."""
    return {
        scope: {int(index): int(count) for index, count in pairs} for scope, pairs in stored.items()
    }


def rerender(run_dir: Path) -> StoredRun:
    """Re-render a report folder's outputs from its stored data (``meshchaos report``)."""
    run = load_run(run_dir)
    render_outputs(
        run_dir,
        run.summary,
        run.latency,
        errors_known=run.errors_known,
        experiment_text=run.experiment_text,
    )
    return run


def report_command(run_dir: Path) -> int:
    """Run ``meshchaos report RUN_DIR``: 0 when re-rendered, 2 (with the reason) on bad input."""
    try:
        rerender(run_dir)
    except ReportError as error:
        print(f"meshchaos report: {error}", file=sys.stderr)
        return 2
    print(f"report: {run_dir / 'report.html'}")
    return 0


def render_outputs(
    run_dir: Path,
    summary: Mapping[str, Any],
    latency: Recorder,
    *,
    errors_known: bool,
    experiment_text: str | None,
) -> None:
    """Write ``junit.xml``, ``summary.md``, the plots and ``report.html`` into ``run_dir``."""
    write_junit(run_dir / "junit.xml", summary)
    (run_dir / "summary.md").write_text(render_markdown(summary))
    plots = _render_plots(run_dir, summary, latency, errors_known=errors_known)
    page = render_html(summary, plots, experiment_text=experiment_text)
    (run_dir / "report.html").write_text(page, encoding="utf-8")


def _render_plots(
    run_dir: Path, summary: Mapping[str, Any], latency: Recorder, *, errors_known: bool
) -> list[Plot]:
    """Draw every plot the stored data allows; return them in the order the page shows them."""
    name = summary["experiment"]["name"]
    windows = fault_windows(summary, measured_s(summary))
    recorded = latency.scope_names()
    plots: list[tuple[str, str, str]] = []  # file, title, caption
    if "all" in recorded:
        intervals = latency.intervals("all")
        plot_latency_over_time(
            run_dir / "latency.png",
            intervals,
            windows,
            title=f"{name}: latency per second (from intended start)",
        )
        plots.append(("latency.png", "Latency over time", _LATENCY_CAPTION))
        plot_throughput_and_errors(
            run_dir / "throughput.png",
            intervals,
            windows,
            title=f"{name}: throughput and error rate per second",
            errors_known=errors_known,
        )
        plots.append(("throughput.png", "Throughput and errors", _THROUGHPUT_CAPTION))
    series = tuple(
        SpectrumSeries(phase, latency.scope(scope, 0.0).histogram, colour)
        for phase, scope, colour in phase_scopes(summary, recorded)
    )
    if series:
        plot_percentile_spectrum(
            run_dir / "spectrum.png",
            [SpectrumPanel("phases", series)],
            title=f"{name}: latency percentile spectrum per phase",
        )
        plots.append(("spectrum.png", "Percentile spectrum per phase", _SPECTRUM_CAPTION))
    edges = [scope for scope in recorded if scope.startswith("edge=") and "," not in scope]
    if edges and errors_known:
        plot_edge_heatmap(
            run_dir / "edges.png",
            [(scope.removeprefix("edge="), latency.intervals(scope)) for scope in edges],
            title=f"{name}: error rate per edge and second",
        )
        plots.append(("edges.png", "Errors per edge", _EDGES_CAPTION))
    topology = summary.get("topology")
    if isinstance(topology, dict):
        plot_topology(
            run_dir / "topology.png",
            [
                ServiceNode(s["name"], int(s["replicas"]), tuple(s.get("calls", ())))
                for s in topology.get("services", [])
            ],
            [FaultMark(f["name"], f["kind"], str(f["target"])) for f in summary["faults"]],
            entry=topology.get("load_target"),
            title=f"{name}: topology and faults",
        )
        plots.append(("topology.png", "Topology", _TOPOLOGY_CAPTION))
    return [
        Plot(title, caption, file=file, png=(run_dir / file).read_bytes())
        for file, title, caption in plots
    ]


def phase_scopes(summary: Mapping[str, Any], recorded: list[str]) -> list[tuple[str, str, str]]:
    """Return ``(phase, scope, colour)`` for each phase of the run that has a recorded scope.

    ``all`` comes first, then the phases in time order, each named once.
    """
    names = list(dict.fromkeys(str(phase["name"]) for phase in summary["phases"]))
    found = []
    for phase in names:
        scope = "all" if phase == "all" else f"phase={phase}"
        if scope in recorded:
            found.append((phase, scope, PHASE_COLOURS.get(phase, "#9467bd")))
    return found


_LATENCY_CAPTION = (
    "Each line is one percentile of the requests whose intended start fell in that second "
    "(latency is measured from the intended start, so a stalled generator cannot hide "
    "queueing). Red bands are faults, from when they were applied to when they were removed."
)
_THROUGHPUT_CAPTION = (
    "Top: requests per second, counted by intended start. Bottom: the share of those requests "
    "that failed (a 5xx, a reset or a timeout)."
)
_SPECTRUM_CAPTION = (
    "HdrHistogram's percentile spectrum: the x axis adds one nine per step (90%, 99%, "
    "99.9%, ...), so the tail gets as much room as the median. A curve ends at its phase's max."
)
_EDGES_CAPTION = (
    "Error rate per edge (caller->callee) and second; grey cells had no requests on that edge. "
    "Retry attempts per edge are not collected yet."
)
_TOPOLOGY_CAPTION = (
    "Services left to right from the load generator; each square is a replica. Red marks what "
    "a fault hit: a service (outline), a replica (square) or an edge (dashed arrow)."
)
