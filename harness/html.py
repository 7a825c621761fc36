"""``report.html``: one self-contained page that says what a run injected and what it did.

The page is rendered from the ``summary.json`` dictionary and the plots' PNG bytes only, so that
``meshchaos report`` can render it again from a stored run. It fetches nothing: the style sheet is
inline, the plots are embedded as base64 ``data:`` URIs and the fault timeline is inline SVG; there
is no script. It reads top-down in the order a newcomer asks: did it pass, what was injected and
when, what it did to latency and errors, then the details (scopes, load, topology, the
experiment as run and the versions). Print rules hide the navigation and keep figures and table
rows whole on a page.

Every value taken from the summary is escaped: experiment, fault and SLO names come from the
user's file.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from meshcore.units import format_duration

__all__ = ["Plot", "render_html"]

_PHASE_FILL = {"baseline": "#dbe9f6", "fault": "#f8d7d7", "recovery": "#dcefdc"}
_PERCENTILES = ("p50", "p90", "p99", "p99.9", "max", "mean")


@dataclass(frozen=True, slots=True)
class Plot:
    """A rendered plot for the page: its heading, how to read it, its file name and PNG bytes."""

    title: str
    caption: str
    file: str
    png: bytes


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _ms(value: float | None) -> str:
    """Format a latency in ms with three significant digits: ``42.7 ms``, ``138 ms``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if value == 0:
        return "0 ms"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{digits}f} ms"


def _pct(fraction: float) -> str:
    """Format a fraction as a percentage with up to three significant digits."""
    value = 100.0 * fraction
    if value == 0:
        return "0 %"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f} %"


def _seconds(value: float) -> str:
    return format_duration(round(value, 3))


def _label(slo: Mapping[str, Any]) -> str:
    if slo["passed"]:
        return "PASS"
    return "WARN" if slo.get("severity", "error") == "warn" else "FAIL"


def render_html(
    summary: Mapping[str, Any], plots: Sequence[Plot], *, experiment_text: str | None
) -> str:
    """Return the whole page for a run's ``summary.json`` data and its rendered plots."""
    name = summary["experiment"]["name"]
    verdict = str(summary["verdict"]).upper()
    by_file = {plot.file: plot for plot in plots}
    body = [
        _header(summary),
        _nav(plots),
        _problems(summary),
        _glance(summary),
        _slo_section(summary),
        _faults_section(summary),
        _figure(by_file.get("latency.png")),
        _figure(by_file.get("throughput.png")),
        _figure(by_file.get("spectrum.png")),
        _edges_note(by_file.get("edges.png")),
        _scopes_section(summary),
        _load_section(summary),
        _topology_section(by_file.get("topology.png")),
        _experiment_section(experiment_text),
        _versions_section(summary),
    ]
    return _PAGE.format(
        title=_e(f"meshchaos · {name} · {verdict}"),
        style=_STYLE,
        body="\n".join(part for part in body if part),
    )


def _header(summary: Mapping[str, Any]) -> str:
    experiment = summary["experiment"]
    verdict = str(summary["verdict"]).lower()
    description = experiment.get("description")
    facts = [
        f"mode {_e(summary.get('mode', 'unknown'))}",
        f"seed {_e(experiment.get('seed'))}",
    ]
    if "measured_s" in summary:
        facts.append(f"{_e(_seconds(summary['measured_s']))} measured")
    if summary.get("started_at"):
        facts.append(f"started {_e(summary['started_at'])}")
    if experiment.get("sha256"):
        facts.append(f"experiment sha256 <code>{_e(str(experiment['sha256'])[:12])}</code>")
    return (
        '<header>\n<p class="kicker">meshchaos report</p>\n'
        f'<h1>{_e(experiment["name"])} <span class="badge {_e(verdict)}">'
        f"{_e(verdict.upper())}</span></h1>\n"
        + (f'<p class="description">{_e(description)}</p>\n' if description else "")
        + f'<p class="facts">{" · ".join(facts)}</p>\n</header>'
    )


def _nav(plots: Sequence[Plot]) -> str:
    links = [("glance", "At a glance"), ("slos", "SLOs"), ("faults", "Faults")]
    links += [(_anchor(plot.file), plot.title) for plot in plots if plot.file != "topology.png"]
    links += [("scopes", "Scopes"), ("load", "Load"), ("topology", "Topology")]
    links += [("experiment", "Experiment"), ("versions", "Versions")]
    items = "".join(f'<a href="#{_e(anchor)}">{_e(text)}</a>' for anchor, text in links)
    return f'<nav aria-label="sections">{items}</nav>'


def _anchor(file: str) -> str:
    return "plot-" + file.removesuffix(".png")


def _problems(summary: Mapping[str, Any]) -> str:
    """Banners for a run that did not go to plan: harness error, interruption, crashes."""
    notes = []
    if summary.get("error"):
        notes.append(f"Harness error: {_e(summary['error'])}. The report is partial.")
    if summary.get("interrupted"):
        notes.append("The run was interrupted; the report covers what was measured until then.")
    steady = summary.get("steady_state")
    if isinstance(steady, dict) and not steady.get("met", True):
        failed = ", ".join(_e(slo.get("name")) for slo in steady.get("failed", []))
        notes.append(
            f"The steady state was not met at {_e(_seconds(steady.get('checked_at_s', 0)))}"
            + (f" ({failed})" if failed else "")
            + "; no fault was injected."
        )
    aborted = summary.get("aborted")
    if isinstance(aborted, dict):
        slo = aborted.get("slo", {})
        notes.append(
            f"The run was aborted at {_e(_seconds(aborted.get('at_s', 0)))}: SLO "
            f"“{_e(slo.get('name'))}” crossed its abort threshold."
        )
    for crash in summary.get("crashes", []):
        notes.append(f"Crash: {_e(crash)}.")
    return "".join(f'<p class="alert">{note}</p>\n' for note in notes)


def _glance(summary: Mapping[str, Any]) -> str:
    """Three answers first: what was injected, what it did, did the SLOs hold."""
    lines = [_injected_line(summary), _effect_line(summary), _slo_line(summary)]
    items = "".join(f"<li>{line}</li>" for line in lines if line)
    return (
        f'<section id="glance">\n<h2>At a glance</h2>\n<ul class="glance">{items}</ul>\n</section>'
    )


def _fault_window(fault: Mapping[str, Any]) -> str:
    applied, removed = fault.get("applied_at_s"), fault.get("removed_at_s")
    if applied is None:
        return "never applied"
    if removed is None:
        return f"from {_seconds(applied)} to the end"
    return f"from {_seconds(applied)} to {_seconds(removed)}"


def _injected_line(summary: Mapping[str, Any]) -> str:
    faults = summary.get("faults", [])
    if not faults and (summary.get("error") or summary.get("interrupted")):
        return "<b>Injected:</b> nothing: the run stopped before its fault schedule started."
    if not faults:
        return "<b>Injected:</b> nothing; this run is a baseline."
    parts = [
        f"<b>{_e(f['name'])}</b>, {_e(f['kind'])} on <code>{_e(f['target'])}</code> "
        f"{_e(_fault_window(f))}"
        for f in faults
    ]
    return "<b>Injected:</b> " + "; ".join(parts) + "."


def _phase_scope(summary: Mapping[str, Any], phase: str) -> Mapping[str, Any] | None:
    scope = summary.get("scopes", {}).get(f"phase={phase}")
    return scope if isinstance(scope, dict) and scope.get("requests") else None


def _effect_line(summary: Mapping[str, Any]) -> str:
    """``p99 went from X in the baseline to Y under fault (x3.2), Z in recovery``; errors."""
    phases = [
        (phase, scope)
        for phase in ("baseline", "fault", "recovery")
        if (scope := _phase_scope(summary, phase)) is not None
    ]
    if not phases:
        everything = summary.get("scopes", {}).get("all")
        if not everything:
            return "<b>Effect:</b> no request was measured."
        return (
            f"<b>Latency:</b> p99 {_e(_ms(everything['latency_ms'].get('p99')))}, "
            f"errors {_e(_pct(everything['error_rate']))}."
        )
    p99 = [
        f"{_e(_ms(scope['latency_ms'].get('p99')))} {_phase_words(phase)}"
        for phase, scope in phases
    ]
    text = "<b>Effect:</b> p99 latency " + ", ".join(p99)
    baseline, fault = _phase_scope(summary, "baseline"), _phase_scope(summary, "fault")
    if baseline and fault and baseline["latency_ms"].get("p99"):
        ratio = fault["latency_ms"]["p99"] / baseline["latency_ms"]["p99"]
        text += f" (\u00d7{ratio:.1f} under fault)"
    errors = ", ".join(
        f"{_e(_pct(scope['error_rate']))} {_phase_words(phase)}" for phase, scope in phases
    )
    return f"{text}; errors {errors}."


def _phase_words(phase: str) -> str:
    return {"baseline": "in the baseline", "fault": "under fault", "recovery": "in recovery"}.get(
        phase, f"in {_e(phase)}"
    )


def _slo_line(summary: Mapping[str, Any]) -> str:
    slos = summary.get("slos", [])
    if not slos:
        return "<b>SLOs:</b> none were set."
    failed = [slo for slo in slos if _label(slo) == "FAIL"]
    warned = [slo for slo in slos if _label(slo) == "WARN"]
    if not failed and not warned:
        return f'<b>SLOs:</b> <span class="held">all {len(slos)} held</span>.'
    parts = [
        f"“{_e(slo['name'])}” ({_e(slo.get('observed_text', slo.get('observed')))} against "
        f"<code>{_e(slo['objective'])}</code>)"
        for slo in failed + warned
    ]
    held = len(slos) - len(failed) - len(warned)
    return (
        f'<b>SLOs:</b> <span class="broken">{len(failed)} failed</span>'
        + (f", {len(warned)} warned" if warned else "")
        + f", {held} held. Not met: "
        + "; ".join(parts)
        + "."
    )


def _slo_section(summary: Mapping[str, Any]) -> str:
    rows = []
    for slo in summary.get("slos", []):
        label = _label(slo)
        observed = slo.get("observed_text")
        if observed is None:
            observed = "n/a" if slo.get("observed") is None else f"{slo['observed']:g}"
        if slo.get("reason"):
            observed = f"{observed} ({slo['reason']})"
        rows.append(
            f"<tr><td>{_e(slo['name'])}</td><td><code>{_e(slo['objective'])}</code></td>"
            f"<td>{_e(slo.get('scope', 'all'))}</td><td class=num>{_e(observed)}</td>"
            f'<td><span class="result {label.lower()}">{label}</span></td></tr>'
        )
    if not rows:
        rows.append('<tr><td colspan="5">No SLOs were set.</td></tr>')
    return (
        '<section id="slos">\n<h2>SLOs</h2>\n<table>\n<thead><tr><th>SLO</th><th>objective</th>'
        "<th>scope</th><th class=num>observed</th><th>result</th></tr></thead>\n<tbody>"
        + "\n".join(rows)
        + "</tbody>\n</table>\n</section>"
    )


def _faults_section(summary: Mapping[str, Any]) -> str:
    faults = summary.get("faults", [])
    rows = [
        f"<tr><td>{_e(f['name'])}</td><td>{_e(f['kind'])}</td><td><code>{_e(f['target'])}"
        f"</code></td><td class=num>{_e(_maybe_seconds(f.get('applied_at_s')))}</td>"
        f"<td class=num>{_e(_maybe_seconds(f.get('removed_at_s')))}</td></tr>"
        for f in faults
    ]
    table = (
        "<table>\n<thead><tr><th>fault</th><th>kind</th><th>target</th>"
        "<th class=num>applied at</th><th class=num>removed at</th></tr></thead>\n<tbody>"
        + "\n".join(rows)
        + "</tbody>\n</table>"
        if rows
        else "<p>No fault was scheduled.</p>"
    )
    return (
        '<section id="faults">\n<h2>Fault timeline</h2>\n'
        + _timeline_svg(summary)
        + "\n<p class=caption>Times are seconds since the start of measurement (warmup "
        "excluded), as each fault was really applied and removed. The top band shows the "
        "phases that the SLOs and scopes refer to.</p>\n" + table + "\n</section>"
    )


def _maybe_seconds(value: float | None) -> str:
    return "—" if value is None else _seconds(value)


def _timeline_svg(summary: Mapping[str, Any]) -> str:
    """Draw the fault timeline as inline SVG: phases on top, a bar per fault, a time axis."""
    phases = [p for p in summary.get("phases", []) if p["name"] != "all"]
    faults = summary.get("faults", [])
    end = max([float(p["end_s"]) for p in summary.get("phases", [])] + [1.0])
    if summary.get("measured_s"):
        end = max(end, float(summary["measured_s"]))
    width, left, right, row = 1000.0, 16.0, 976.0, 26.0
    height = row * (2 + len(faults)) + 26

    def x(seconds: float) -> float:
        return left + (right - left) * min(max(seconds, 0.0), end) / end

    parts = []
    for phase in phases:
        x0, x1 = x(float(phase["start_s"])), x(float(phase["end_s"]))
        fill = _PHASE_FILL.get(phase["name"], "#eeeeee")
        parts.append(
            f'<rect x="{x0:.1f}" y="4" width="{max(x1 - x0, 0.5):.1f}" height="{row - 6}" '
            f'fill="{fill}"/><text x="{(x0 + x1) / 2:.1f}" y="{row / 2 + 5:.1f}" '
            f'text-anchor="middle" class="phase">{_e(phase["name"])}</text>'
        )
    for number, fault in enumerate(faults, start=1):
        y = 4 + row * number + 4
        applied = fault.get("applied_at_s")
        label = f"{fault['name']} ({fault['kind']}) on {fault['target']}"
        if applied is None:
            parts.append(
                f'<text x="{left}" y="{y + 14:.1f}" class="muted">{_e(label)}: never applied</text>'
            )
            continue
        removed = fault.get("removed_at_s")
        x0, x1 = x(float(applied)), x(float(end if removed is None else removed))
        # The label goes beside the bar, on the side with more room: a short bar cannot hold it.
        anchor, tx = ("start", x1 + 6) if right - x1 >= x0 - left else ("end", x0 - 6)
        parts.append(
            f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0, 1.0):.1f}" '
            f'height="{row - 8}" rx="3" fill="#d62728" fill-opacity="0.85"/>'
            f'<text x="{tx:.1f}" y="{y + 13:.1f}" text-anchor="{anchor}">{_e(label)}</text>'
        )
    axis_y = 4 + row * (1 + len(faults)) + 6
    parts.append(f'<line x1="{left}" x2="{right}" y1="{axis_y}" y2="{axis_y}" stroke="#888"/>')
    step = _tick_step(end)
    tick = 0.0
    while tick <= end + 1e-9:
        tx = x(tick)
        parts.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{axis_y}" y2="{axis_y + 4}" stroke="#888"/>'
            f'<text x="{tx:.1f}" y="{axis_y + 16}" text-anchor="middle" class="tick">'
            f"{_e(_seconds(tick))}</text>"
        )
        tick += step
    return (
        f'<svg class="timeline" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="fault timeline">{"".join(parts)}</svg>'
    )


def _tick_step(end: float) -> float:
    """Return a 1-2-5 tick step giving at most about ten ticks over ``end`` seconds."""
    raw = end / 10.0
    magnitude = 10.0 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1.0, 2.0, 5.0, 10.0):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10.0 * magnitude


def _figure(plot: Plot | None) -> str:
    if plot is None:
        return ""
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<section id="{_e(_anchor(plot.file))}" class="plot">\n<h2>{_e(plot.title)}</h2>\n'
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(plot.title)}" '
        f'width="1500" height="{_png_height(plot.png)}">'
        f"<figcaption>{_e(plot.caption)} <span class=file>({_e(plot.file)})</span>"
        "</figcaption></figure>\n</section>"
    )


def _png_height(png: bytes) -> int:
    """Return a PNG's height from its IHDR chunk (so the page reserves the right space)."""
    return int.from_bytes(png[20:24], "big") if len(png) >= 24 else 750


def _edges_note(plot: Plot | None) -> str:
    if plot is not None:
        return _figure(plot)
    return (
        '<section id="edges" class="note">\n<h2>Per-edge errors and retries</h2>\n<p>This run '
        "has no per-edge measurements: the load generator measures the load target only, and "
        "the sidecars' per-edge counts (errors, retry attempts) are not collected into the "
        "report yet. The sidecars' access logs under <code>logs/</code> hold every request.</p>"
        "\n</section>"
    )


def _scope_order(name: str) -> tuple[int, str]:
    order = {"all": 0, "phase=baseline": 1, "phase=fault": 2, "phase=recovery": 3}
    return order.get(name, 4), name


def _scopes_section(summary: Mapping[str, Any]) -> str:
    rows = []
    scopes = summary.get("scopes", {})
    for name in sorted(scopes, key=_scope_order):
        scope = scopes[name]
        latency = scope.get("latency_ms", {})
        cells = "".join(f"<td class=num>{_e(_ms(latency.get(key)))}</td>" for key in _PERCENTILES)
        rows.append(
            f"<tr><td>{_e(name)}</td><td class=num>{scope['requests']:,}</td>"
            f"<td class=num>{scope['errors']:,}</td>"
            f"<td class=num>{_e(_pct(scope['error_rate']))}</td>"
            f"<td class=num>{scope['throughput_rps']:,.1f}</td>{cells}</tr>"
        )
    heads = "".join(f"<th class=num>{key}</th>" for key in _PERCENTILES)
    return (
        '<section id="scopes">\n<h2>Scopes</h2>\n<div class="wide"><table>\n<thead><tr>'
        "<th>scope</th><th class=num>requests</th><th class=num>errors</th>"
        "<th class=num>error rate</th><th class=num>req/s</th>"
        + heads
        + "</tr></thead>\n<tbody>"
        + "\n".join(rows)
        + "</tbody>\n</table></div>\n<p class=caption>Latency from each request's intended "
        "start. A phase scope holds the requests whose intended start fell in that phase.</p>"
        "\n</section>"
    )


def _load_section(summary: Mapping[str, Any]) -> str:
    load = summary.get("load")
    if not isinstance(load, dict):
        return ""
    rows: list[tuple[str, str | None]] = [
        ("target", load.get("target")),
        ("intended rate", f"{load['target_rps']:,.1f} req/s"),
        ("achieved rate", f"{load['achieved_rps']:,.1f} req/s"),
        ("requests", f"{load['requests']:,}" if "requests" in load else None),
        ("dropped (no free connection)", f"{load.get('dropped', 0):,}"),
    ]
    lag = load.get("generator_lag_ms", {})
    if lag:
        rows.append(("generator lag p99 / max", f"{_ms(lag.get('p99'))} / {_ms(lag.get('max'))}"))
    uncorrected = load.get("uncorrected_latency_ms", {})
    corrected = summary.get("scopes", {}).get("all", {}).get("latency_ms", {})
    if uncorrected and corrected:
        rows.append(
            (
                "p99 from intended start / from actual send",
                f"{_ms(corrected.get('p99'))} / {_ms(uncorrected.get('p99'))}",
            )
        )
    body = "".join(
        f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>"
        for key, value in rows
        if value is not None
    )
    return (
        f'<section id="load">\n<h2>Load</h2>\n<table class="facts">{body}</table>\n'
        "<p class=caption>Open-loop load: requests are sent on schedule whether or not earlier "
        "ones have finished. A large gap between the two p99s means the generator fell behind."
        "</p>\n</section>"
    )


def _topology_section(plot: Plot | None) -> str:
    if plot is not None:
        return _figure(plot).replace(f'id="{_anchor(plot.file)}"', 'id="topology"', 1)
    return (
        '<section id="topology" class="note">\n<h2>Topology</h2>\n<p>This report predates '
        "stored topologies; see the services in the experiment below.</p>\n</section>"
    )


def _experiment_section(text: str | None) -> str:
    content = (
        f"<pre>{_e(text)}</pre>" if text else "<p>experiment.yaml is missing from the folder.</p>"
    )
    return (
        '<section id="experiment">\n<h2>The experiment as run</h2>\n<p class=caption>'
        "experiment.yaml: the seed, overrides and defaults resolved.</p>\n"
        + content
        + "\n</section>"
    )


def _versions_section(summary: Mapping[str, Any]) -> str:
    versions = summary.get("versions", {})
    rows = "".join(
        f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>" for key, value in versions.items()
    )
    times = "".join(
        f"<tr><th>{label}</th><td>{_e(summary[key])}</td></tr>"
        for label, key in (("started", "started_at"), ("finished", "finished_at"))
        if summary.get(key)
    )
    return (
        '<section id="versions">\n<h2>Versions</h2>\n'
        f'<table class="facts">{rows}{times}</table>\n</section>'
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
{body}
<footer>Written by meshchaos. Re-render with <code>meshchaos report FOLDER</code>; compare two
runs with <code>meshchaos compare A B</code>.</footer>
</body>
</html>
"""

_STYLE = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa;
        --pass: #1a7f37; --fail: #cf222e; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1120px; padding: 24px 28px 48px; color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
header { border-bottom: 1px solid var(--line); padding-bottom: 8px; }
.kicker { margin: 0; color: var(--muted); text-transform: uppercase; letter-spacing: .08em;
          font-size: 12px; }
h1 { margin: 4px 0 6px; font-size: 30px; }
h2 { margin: 28px 0 8px; font-size: 20px; border-bottom: 1px solid var(--line);
     padding-bottom: 4px; }
.description { margin: 0 0 4px; font-size: 16px; }
p.facts, .caption, figcaption, .muted { color: var(--muted); }
p.facts { margin: 0; font-size: 13px; }
.badge { display: inline-block; vertical-align: middle; margin-left: 8px; padding: 2px 12px;
         border-radius: 14px; font-size: 16px; letter-spacing: .05em; color: #fff; }
.badge.pass { background: var(--pass); } .badge.fail { background: var(--fail); }
nav { position: sticky; top: 0; z-index: 1; display: flex; flex-wrap: wrap; gap: 4px 14px;
      padding: 8px 0; background: #fff; border-bottom: 1px solid var(--line); font-size: 13px; }
nav a { color: var(--muted); text-decoration: none; } nav a:hover { color: var(--ink); }
.alert { border-left: 4px solid var(--fail); background: #ffebe9; padding: 8px 12px;
         white-space: pre-wrap; overflow-wrap: anywhere; }
ul.glance { padding-left: 20px; font-size: 16px; } ul.glance li { margin: 6px 0; }
.held { color: var(--pass); font-weight: 600; }
.broken { color: var(--fail); font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
thead th { background: var(--soft); font-weight: 600; }
tbody tr:nth-child(even) { background: #fafbfc; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.facts { width: auto; } table.facts th { font-weight: 600; color: var(--muted); }
.wide { overflow-x: auto; }
.result { display: inline-block; min-width: 48px; text-align: center; border-radius: 4px;
          padding: 0 6px; font-weight: 700; font-size: 12px; color: #fff; }
.result.pass { background: var(--pass); } .result.fail { background: var(--fail); }
.result.warn { background: var(--warn); }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
      padding: 12px; overflow-x: auto; white-space: pre-wrap; }
figure { margin: 0; }
figure img { display: block; width: 100%; height: auto; border: 1px solid var(--line);
             border-radius: 4px; }
figcaption, .caption { font-size: 13px; margin-top: 6px; }
.file { font-family: ui-monospace, monospace; font-size: 12px; }
svg.timeline { display: block; width: 100%; height: auto; margin: 4px 0 2px; }
svg.timeline text { font: 13px system-ui, "DejaVu Sans", sans-serif; fill: var(--ink); }
svg.timeline text.tick, svg.timeline text.muted { fill: var(--muted); font-size: 12px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print {
  @page { margin: 14mm; }
  body { max-width: none; padding: 0; font-size: 11pt; }
  nav { display: none; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  section.plot, figure, svg.timeline, tr { break-inside: avoid; }
  h2 { break-after: avoid; }
  pre { white-space: pre-wrap; }
}
"""
