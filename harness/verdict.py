"""The CI-facing outputs of a run: verdict, ``junit.xml``, ``summary.md``, the terminal table.

Every renderer takes the ``summary.json`` dictionary (DESIGN.md 4.3), so that ``meshchaos report``
can re-render them from a stored run. Its ``slos`` entries are :meth:`SloResult.to_json` dicts;
the summary may also carry ``"interrupted": true`` and ``"error": "message"`` when the run did not
finish, ``steady_state`` with ``"met": false`` when no fault was injected because the
steady-state SLOs failed, and ``aborted`` when a guard rail stopped the run; every output says so.

An SLO's result reads ``PASS``, ``FAIL`` (a failed ``error`` SLO: it fails the run), ``WARN`` (a
failed ``warn`` SLO: reported, never failing) or ``SKIP`` (its phase was never reached because the
run ended early).
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.slo import SloResult
from meshcore.units import format_duration

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = [
    "explain",
    "overall_verdict",
    "render_markdown",
    "render_rich_verdict",
    "render_verdict_table",
    "write_junit",
]

_COLORS = {"PASS": "\x1b[32m", "FAIL": "\x1b[31m", "WARN": "\x1b[33m", "SKIP": "\x1b[2m"}
_RICH_STYLES = {"PASS": "green", "FAIL": "bold red", "WARN": "yellow", "SKIP": "dim"}
_BOLD = "\x1b[1m"
_RESET = "\x1b[0m"
_COLUMNS = ("SLO", "objective", "scope", "observed", "result")


def overall_verdict(results: Sequence[SloResult]) -> str:
    """Return ``"fail"`` when an ``error`` SLO failed, else ``"pass"`` (warnings never fail)."""
    failed = any(not result.passed and result.severity == "error" for result in results)
    return "fail" if failed else "pass"


def _result_label(slo: Mapping[str, Any]) -> str:
    if slo["passed"]:
        return "PASS"
    if slo.get("skipped"):
        return "SKIP"
    return "WARN" if slo.get("severity", "error") == "warn" else "FAIL"


def _observed(slo: Mapping[str, Any]) -> str:
    """Show the observed value, with the reason when there is one."""
    text = slo.get("observed_text")
    if text is None:
        text = "n/a" if slo.get("observed") is None else f"{slo['observed']:g}"
    reason = slo.get("reason")
    return f"{text} ({reason})" if reason else str(text)


def _scope(slo: Mapping[str, Any]) -> str:
    return str(slo.get("scope", "all"))


def _objective(slo: Mapping[str, Any]) -> str:
    """Show the objective as written, with the threshold a relative one resolved to."""
    threshold = slo.get("threshold_text")
    return f"{slo['objective']} (= {threshold})" if threshold else str(slo["objective"])


def _detail(slo: Mapping[str, Any]) -> str:
    """``observed X, objective Y, scope Z``: the message of a JUnit failure."""
    return f"observed {_observed(slo)}, objective {_objective(slo)}, scope {_scope(slo)}"


def _run_problem(summary: Mapping[str, Any]) -> str | None:
    """Why the run did not finish normally, or None when it did."""
    if summary.get("error"):
        return f"harness error: {summary['error']}"
    if summary.get("interrupted"):
        return "run interrupted; the report is partial"
    return None


def _early_end(summary: Mapping[str, Any]) -> str | None:
    """Why the run stopped before its end on an SLO (steady state or guard rail), or None."""
    steady = summary.get("steady_state")
    if steady is not None and not steady["met"]:
        names = ", ".join(repr(slo["name"]) for slo in steady["failed"])
        return (
            f"steady state not met at {_seconds(steady['checked_at_s'])} ({names} failed): "
            "no fault was injected"
        )
    aborted = summary.get("aborted")
    if aborted is not None:
        slo = aborted["slo"]
        return (
            f"aborted at {_seconds(aborted['at_s'])} by the guard rail {slo['name']!r}: "
            f"{_detail(slo)}"
        )
    return None


def _elapsed_s(summary: Mapping[str, Any]) -> float:
    try:
        started = dt.datetime.fromisoformat(str(summary["started_at"]))
        finished = dt.datetime.fromisoformat(str(summary["finished_at"]))
    except (KeyError, ValueError):
        return 0.0
    return max(0.0, (finished - started).total_seconds())


def write_junit(path: Path, summary: Mapping[str, Any]) -> None:
    """Write JUnit XML: one testsuite per run, one testcase per SLO.

    A failed ``error`` SLO carries ``<failure message="observed X, objective Y, scope Z">``; a
    failed ``warn`` SLO only a ``<system-out>`` line, so that CI shows it without failing; an SLO
    whose phase the run never reached is ``<skipped>``. A run that a steady-state check or a
    guard rail stopped adds a testcase ``run`` with a ``<failure>``; one that was interrupted or
    crashed, a testcase ``run`` with an ``<error>``.
    """
    experiment = str(summary["experiment"]["name"])
    classname = f"meshchaos.{experiment}"
    slos: Sequence[Mapping[str, Any]] = summary.get("slos", [])
    problem = _run_problem(summary)
    early = _early_end(summary)
    labels = [_result_label(slo) for slo in slos]
    suite = ET.Element(
        "testsuite",
        name=classname,
        tests=str(len(slos) + int(problem is not None) + int(early is not None)),
        failures=str(labels.count("FAIL") + int(early is not None)),
        errors=str(int(problem is not None)),
        skipped=str(labels.count("SKIP")),
        time=f"{_elapsed_s(summary):.3f}",
    )
    if "started_at" in summary:
        suite.set("timestamp", str(summary["started_at"]))
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("seed", summary["experiment"].get("seed")),
        ("sha256", summary["experiment"].get("sha256")),
        ("mode", summary.get("mode")),
        ("verdict", summary.get("verdict")),
    ):
        if value is not None:
            ET.SubElement(properties, "property", name=key, value=str(value))
    for slo in slos:
        case = ET.SubElement(suite, "testcase", classname=classname, name=str(slo["name"]))
        label = _result_label(slo)
        if label == "FAIL":
            failure = ET.SubElement(case, "failure", message=_detail(slo), type="SLO")
            failure.text = f"SLO {slo['name']!r} failed: {_detail(slo)}"
        elif label == "SKIP":
            ET.SubElement(case, "skipped", message=str(slo.get("reason", "")))
        ET.SubElement(case, "system-out").text = f"{label}: {_detail(slo)}"
    if early is not None:
        case = ET.SubElement(suite, "testcase", classname=classname, name="run")
        ET.SubElement(case, "failure", message=early, type="run").text = early
    if problem is not None:
        case = ET.SubElement(suite, "testcase", classname=classname, name="run")
        ET.SubElement(case, "error", message=problem, type="run")
    tree = ET.ElementTree(suite)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _number(value: float) -> str:
    """Format a rate or count with at most one decimal: ``200``, ``199.6``."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _seconds(value: float) -> str:
    return format_duration(round(value, 3))


def _tally(summary: Mapping[str, Any]) -> str:
    labels = [_result_label(slo) for slo in summary.get("slos", [])]
    text = f"{labels.count('FAIL')} of {len(labels)} SLOs failed"
    warnings = labels.count("WARN")
    if warnings:
        text += f", {warnings} warning{'s' if warnings > 1 else ''}"
    if labels.count("SKIP"):
        text += f", {labels.count('SKIP')} not reached"
    return text


def _load_line(load: Mapping[str, Any]) -> str:
    text = (
        f"target {_number(load['target_rps'])}/s, achieved {_number(load['achieved_rps'])}/s, "
        f"{load.get('dropped', 0)} dropped"
    )
    lag = load.get("generator_lag_ms", {}).get("p99")
    if lag is not None:
        text += f", generator lag p99 {_number(lag)}ms"
    return text


def _fault_line(fault: Mapping[str, Any]) -> str:
    applied, removed = fault.get("applied_at_s"), fault.get("removed_at_s")
    if applied is None:
        window = "not applied"
    elif removed is None:
        window = f"from {_seconds(applied)} to the end"
    else:
        window = f"{_seconds(applied)} to {_seconds(removed)}"
    return f"`{fault['name']}`: {fault['kind']} on `{fault['target']}`, {window}"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: Mapping[str, Any]) -> str:
    """Render the verdict, SLO table, load and faults as Markdown for a pull-request comment."""
    experiment = summary["experiment"]
    verdict = str(summary["verdict"]).upper()
    lines = [
        f"### meshchaos `{experiment['name']}`: **{verdict}**",
        "",
        f"{_tally(summary)}. Mode {summary.get('mode', 'unknown')}, seed {experiment.get('seed')}.",
    ]
    for problem in (_early_end(summary), _run_problem(summary)):
        if problem is not None:
            lines += ["", f"**{_md_cell(problem)}**"]
    lines += ["", "| " + " | ".join(_COLUMNS) + " |", "|---|---|---|---|---|"]
    for slo in summary.get("slos", []):
        cells = (
            _md_cell(str(slo["name"])),
            f"`{_md_cell(_objective(slo))}`",
            _md_cell(_scope(slo)),
            _md_cell(_observed(slo)),
            f"**{_result_label(slo)}**" if _result_label(slo) != "PASS" else "PASS",
        )
        lines.append("| " + " | ".join(cells) + " |")
    if "load" in summary:
        lines += ["", f"**Load:** {_load_line(summary['load'])}."]
    faults = summary.get("faults", [])
    if faults:
        lines += ["", "**Faults:**", *(f"- {_fault_line(fault)}" for fault in faults)]
    return "\n".join(lines) + "\n"


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text


def render_verdict_table(summary: Mapping[str, Any], *, color: bool) -> str:
    """Render the table the CLI prints after a run, ending with ``verdict: PASS|FAIL``.

    ANSI colors only when ``color`` is true; columns are padded before coloring so they align.
    """
    rows = _rows(summary)
    widths = [max(len(row[i]) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]

    def line(cells: Sequence[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths[:-1], strict=True)]
        return "  ".join([*padded, cells[-1]])

    lines = [_paint(line(_COLUMNS), _BOLD, color), "  ".join("-" * width for width in widths)]
    for row in rows:
        lines.append(line([*row[:-1], _paint(row[-1], _COLORS[row[-1]], color)]))
    if not rows:
        lines.append("(no SLOs)")
    for problem in (_early_end(summary), _run_problem(summary)):
        if problem is not None:
            lines.append(_paint(problem, _COLORS["WARN"], color))
    verdict = str(summary["verdict"]).upper()
    lines.append("verdict: " + _paint(verdict, _BOLD + _COLORS.get(verdict, ""), color))
    return "\n".join(lines) + "\n"


def _rows(summary: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    return [
        (str(slo["name"]), _objective(slo), _scope(slo), _observed(slo), _result_label(slo))
        for slo in summary.get("slos", [])
    ]


def render_rich_verdict(summary: Mapping[str, Any]) -> RenderableType:
    """Return the verdict as a rich renderable: the SLO table, problems and the verdict line.

    The CLI prints it on a terminal; :func:`render_verdict_table` is the plain-text form for
    logs and CI.
    """
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    verdict = str(summary["verdict"]).upper()
    table = Table(
        title=f"meshchaos {summary['experiment']['name']}",
        caption=_tally(summary),
        title_justify="left",
        caption_justify="left",
    )
    for column in _COLUMNS:
        table.add_column(column, justify="right" if column == "observed" else "left")
    for *cells, label in _rows(summary):
        table.add_row(*cells, Text(label, style=_RICH_STYLES[label]))
    parts: list[RenderableType] = [table]
    for problem in (_early_end(summary), _run_problem(summary)):
        if problem is not None:
            parts.append(Text(problem, style="yellow"))
    style = "bold green" if verdict == "PASS" else "bold red"
    parts.append(Text.assemble("verdict: ", (verdict, style)))
    return Group(*parts)


def explain(summary: Mapping[str, Any]) -> str:
    """Return a readable account of a run's verdict, for an assertion message.

    One line for the verdict, one for why the run ended early (if it did), then one per SLO
    that failed, warned or was not reached, with its objective, scope and observed value.
    """
    experiment = summary["experiment"]["name"]
    lines = [f"meshchaos {experiment}: {str(summary['verdict']).upper()}, {_tally(summary)}"]
    for problem in (_early_end(summary), _run_problem(summary)):
        if problem is not None:
            lines.append(problem)
    for slo in summary.get("slos", []):
        label = _result_label(slo)
        if label != "PASS":
            lines.append(f"{label} {slo['name']!r}: {_detail(slo)}")
    return "\n".join(lines)
