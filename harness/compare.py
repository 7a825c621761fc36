"""``meshchaos compare RUN_A RUN_B``: what a change changed, and whether it is more than noise.

Two report folders are read back (:func:`harness.report.load_run`) and their scopes matched by
name. For every matched scope and metric (p50, p90, p99, p99.9, max, error rate, throughput)
the delta table gives A, B, the change and the change relative to A. The totals come from each
run's ``summary.json``, the same numbers its own report shows.

Significance: each metric is also computed per interval (one value per second: the interval's
p99 for the p99 row, its error rate for the error-rate row, ...), and a two-sided Mann-Whitney U
test (:mod:`harness.significance`) asks whether B's intervals differ from A's. Two runs of the
same build differ in every total; only a shift that holds across the intervals is marked
significant. :data:`ALPHA` is 0.01 rather than the textbook 0.05 because one comparison runs
dozens of tests and consecutive intervals are not independent, both of which make chance
"significant" results more frequent than the nominal level.

A *regression* is a significant change for the worse: latency or error rate up, throughput
down. ``--max-regression PCT`` makes the command exit 1 when a regression exceeds PCT % of A's
value (from an A of 0, any regression does). Exit codes: 0, 1 (regression over the threshold),
2 (bad input: a folder that is not a readable report, a negative threshold).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.plots import (
    RunIntervals,
    SpectrumPanel,
    SpectrumSeries,
    plot_latency_overlay,
    plot_percentile_spectrum,
)
from harness.recorder import Interval
from harness.report import (
    ReportError,
    StoredRun,
    fault_windows,
    load_run,
    measured_s,
    phase_scopes,
)
from harness.significance import mann_whitney_u

__all__ = [
    "ALPHA",
    "Comparison",
    "Delta",
    "compare_runs",
    "render_compare_markdown",
    "run_command",
    "write_compare_plots",
]

ALPHA = 0.01
"""A difference is significant when the test's p-value is below this (see the module docstring)."""
EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2
_COLOUR_A, _COLOUR_B = "#1f77b4", "#ff7f0e"
_LISTED = 5
"""The outcome line names at most this many regressions, the largest first."""
_LATENCY_METRICS = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9), ("max", None))


@dataclass(frozen=True, slots=True)
class Delta:
    """One metric of one scope in both runs.

    ``p_value`` is ``None`` when there was nothing to test (no per-interval values in a run).
    ``higher_is_worse`` says which way is a regression: True for latency and errors, False for
    throughput.
    """

    scope: str
    metric: str
    unit: str
    a: float
    b: float
    p_value: float | None
    higher_is_worse: bool

    @property
    def change(self) -> float:
        """B minus A, in the metric's unit."""
        return self.b - self.a

    @property
    def change_unit(self) -> str:
        """The unit of :attr:`change`: percentage points (pp) for a rate in %."""
        return "pp" if self.unit == "%" else self.unit

    @property
    def change_pct(self) -> float:
        """The change relative to A, in %; ±inf when A is 0 and B is not, 0 when both are."""
        if self.a == 0:
            return 0.0 if self.b == 0 else math.copysign(math.inf, self.b)
        return 100.0 * (self.b - self.a) / abs(self.a)

    @property
    def significant(self) -> bool:
        """Tell whether the per-interval values of B differ from A's (p < :data:`ALPHA`)."""
        return self.p_value is not None and self.p_value < ALPHA

    @property
    def worse(self) -> bool:
        """Tell whether B is worse than A on this metric (whether or not significantly)."""
        return self.change > 0 if self.higher_is_worse else self.change < 0

    @property
    def regression_pct(self) -> float:
        """How much worse B is, in % of A: 0 when B is not significantly worse."""
        if not (self.significant and self.worse):
            return 0.0
        return abs(self.change_pct)


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two runs, the deltas of their matched scopes, and the scopes only one of them has."""

    a: StoredRun
    b: StoredRun
    deltas: tuple[Delta, ...]
    only_in_a: tuple[str, ...]
    only_in_b: tuple[str, ...]

    def regressions(self, threshold_pct: float) -> list[Delta]:
        """Return the significant regressions larger than ``threshold_pct`` % of A."""
        return [delta for delta in self.deltas if delta.regression_pct > threshold_pct]


def _scope_order(name: str) -> tuple[int, str]:
    order = {"all": 0, "phase=baseline": 1, "phase=fault": 2, "phase=recovery": 3}
    return order.get(name, 4), name


def _intervals(run: StoredRun, scope: str) -> list[Interval]:
    """Return a scope's intervals that had requests (an empty one has no percentile)."""
    if scope not in run.latency.scope_names():
        return []
    return [interval for interval in run.latency.iter_intervals(scope) if interval.requests]


def _test(first: Sequence[float], second: Sequence[float]) -> float | None:
    if not first or not second:
        return None
    return mann_whitney_u(first, second).p_value


def compare_runs(a: StoredRun, b: StoredRun) -> Comparison:
    """Match the scopes of two runs by name and compute every delta with its significance."""
    scopes_a, scopes_b = a.summary["scopes"], b.summary["scopes"]
    matched = sorted(set(scopes_a) & set(scopes_b), key=_scope_order)
    deltas: list[Delta] = []
    for scope in matched:
        totals_a, totals_b = scopes_a[scope], scopes_b[scope]
        intervals_a, intervals_b = _intervals(a, scope), _intervals(b, scope)
        for metric, percentile in _LATENCY_METRICS:
            values_a = [_latency_ms(interval, percentile) for interval in intervals_a]
            values_b = [_latency_ms(interval, percentile) for interval in intervals_b]
            deltas.append(
                Delta(
                    scope,
                    metric,
                    "ms",
                    float(totals_a["latency_ms"][metric]),
                    float(totals_b["latency_ms"][metric]),
                    _test(values_a, values_b),
                    True,
                )
            )
        errors_p = None
        if a.errors_known and b.errors_known:
            errors_p = _test(
                [100.0 * i.errors / i.requests for i in intervals_a],
                [100.0 * i.errors / i.requests for i in intervals_b],
            )
        deltas.append(
            Delta(
                scope,
                "error rate",
                "%",
                100.0 * float(totals_a["error_rate"]),
                100.0 * float(totals_b["error_rate"]),
                errors_p,
                True,
            )
        )
        deltas.append(
            Delta(
                scope,
                "throughput",
                "req/s",
                float(totals_a["throughput_rps"]),
                float(totals_b["throughput_rps"]),
                _test([_rate(i) for i in intervals_a], [_rate(i) for i in intervals_b]),
                False,
            )
        )
    return Comparison(
        a,
        b,
        tuple(deltas),
        only_in_a=tuple(sorted(set(scopes_a) - set(scopes_b), key=_scope_order)),
        only_in_b=tuple(sorted(set(scopes_b) - set(scopes_a), key=_scope_order)),
    )


def _latency_ms(interval: Interval, percentile: float | None) -> float:
    return interval.max_ms if percentile is None else interval.percentile_ms(percentile)


def _rate(interval: Interval) -> float:
    return interval.requests / (interval.end_s - interval.start_s)


# --- rendering -------------------------------------------------------------------------------


def _number(value: float, unit: str) -> str:
    """Format a value with three significant digits and its unit: ``42.7 ms``, ``0.5 %``."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{digits}f} {unit}"


def _signed(value: float, unit: str) -> str:
    text = _number(abs(value), unit)
    return f"+{text}" if value > 0 else (f"-{text}" if value < 0 else text)


def _percent(value: float) -> str:
    if math.isinf(value):
        return "+∞ %" if value > 0 else "-∞ %"
    return f"{value:+.1f} %" if value else "0 %"


def _verdict(delta: Delta) -> str:
    if delta.p_value is None:
        return "not tested"
    if not delta.significant:
        return "—"
    return "**worse** \\*" if delta.worse else "better \\*"


def _run_line(label: str, run: StoredRun) -> str:
    summary = run.summary
    experiment = summary["experiment"]
    return (
        f"- **{label}**: `{run.path}`: `{experiment['name']}`, seed {experiment.get('seed')}, "
        f"started {summary.get('started_at', 'unknown')}, verdict "
        f"{str(summary['verdict']).upper()}"
    )


def render_compare_markdown(
    comparison: Comparison, *, max_regression: float | None, plots: Sequence[str] = ()
) -> str:
    """Render the comparison as Markdown: the runs, the outcome, a delta table per scope."""
    lines = [
        f"## meshchaos compare: `{comparison.a.summary['experiment']['name']}` (A) vs "
        f"`{comparison.b.summary['experiment']['name']}` (B)",
        "",
        _run_line("A", comparison.a),
        _run_line("B", comparison.b),
        "",
        _outcome(comparison, max_regression),
        "",
        "Δ % is relative to A; the Δ of an error rate is in percentage points (pp). "
        f"Significance: two-sided Mann-Whitney U test of B's per-interval "
        f"values against A's (one value per interval of "
        f"{comparison.a.latency.interval_s:g} s), alpha = {ALPHA:g}; \\* marks a significant "
        "difference, — a difference within the noise.",
    ]
    scope = None
    for delta in comparison.deltas:
        if delta.scope != scope:
            scope = delta.scope
            lines += [
                "",
                f"### `{scope}`",
                "",
                "| metric | A | B | Δ | Δ % | p | significant |",
                "|---|---:|---:|---:|---:|---:|---|",
            ]
        cells = (
            delta.metric,
            _number(delta.a, delta.unit),
            _number(delta.b, delta.unit),
            _signed(delta.change, delta.change_unit),
            _percent(delta.change_pct),
            "n/a" if delta.p_value is None else f"{delta.p_value:.3g}",
            _verdict(delta),
        )
        lines.append("| " + " | ".join(cells) + " |")
    if not comparison.deltas:
        lines += ["", "No scope is in both runs: nothing to compare."]
    if comparison.only_in_a or comparison.only_in_b:
        lines += ["", "**Unmatched scopes** (not compared):"]
        if comparison.only_in_a:
            lines.append("- only in A: " + ", ".join(f"`{s}`" for s in comparison.only_in_a))
        if comparison.only_in_b:
            lines.append("- only in B: " + ", ".join(f"`{s}`" for s in comparison.only_in_b))
    if plots:
        lines += ["", "Plots: " + ", ".join(f"[{name}]({name})" for name in plots) + "."]
    return "\n".join(lines) + "\n"


def _outcome(comparison: Comparison, max_regression: float | None) -> str:
    worse = comparison.regressions(0.0)
    if not worse:
        better = [d for d in comparison.deltas if d.significant and not d.worse]
        text = "**No significant regression.**"
        if better:
            text += f" {len(better)} significant improvement{'s' if len(better) > 1 else ''}."
        return text
    largest = sorted(worse, key=lambda d: -d.regression_pct)
    listed = ", ".join(
        f"{d.metric} of `{d.scope}` {_percent(d.change_pct)}" for d in largest[:_LISTED]
    )
    if len(largest) > _LISTED:
        listed += f" and {len(largest) - _LISTED} more in the tables below"
    text = f"**{len(worse)} significant regression{'s' if len(worse) > 1 else ''}:** {listed}."
    if max_regression is not None:
        over = comparison.regressions(max_regression)
        text += (
            f" **{len(over)} exceed{'s' if len(over) == 1 else ''} the "
            f"--max-regression of {max_regression:g} %.**"
            if over
            else f" None exceeds the --max-regression of {max_regression:g} %."
        )
    return text


def write_compare_plots(out: Path, comparison: Comparison) -> list[str]:
    """Write the spectrum overlays per phase and the latency overlay; return the file names."""
    a, b = comparison.a, comparison.b
    label_a, label_b = (
        f"A {a.summary['experiment']['name']}",
        f"B {b.summary['experiment']['name']}",
    )
    written = []
    phases_b = {scope for _, scope, _ in phase_scopes(b.summary, b.latency.scope_names())}
    panels = [
        SpectrumPanel(
            phase,
            (
                SpectrumSeries(label_a, a.latency.scope(scope, 0.0).histogram, _COLOUR_A),
                SpectrumSeries(label_b, b.latency.scope(scope, 0.0).histogram, _COLOUR_B, "--"),
            ),
        )
        for phase, scope, _ in phase_scopes(a.summary, a.latency.scope_names())
        if scope in phases_b
    ]
    if panels:
        plot_percentile_spectrum(
            out / "spectrum.png", panels, title="percentile spectrum per phase: A vs B"
        )
        written.append("spectrum.png")
    if "all" in a.latency.scope_names() and "all" in b.latency.scope_names():
        windows = fault_windows(a.summary, measured_s(a.summary))
        seen = {(w.name, w.kind, round(w.start_s), round(w.end_s)) for w in windows}
        for window in fault_windows(b.summary, measured_s(b.summary)):
            if (window.name, window.kind, round(window.start_s), round(window.end_s)) not in seen:
                windows.append(window)
        plot_latency_overlay(
            out / "latency.png",
            [
                RunIntervals(label_a, a.latency.intervals("all"), _COLOUR_A),
                RunIntervals(label_b, b.latency.intervals("all"), _COLOUR_B),
            ],
            windows,
            title="latency per second, aligned on the start of measurement: A vs B",
        )
        written.append("latency.png")
    return written


# --- command line ----------------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    """Run ``meshchaos compare``; return its exit code (see the module docstring).

    Its arguments are defined in :mod:`harness.cliargs`, which does not import this module.
    """
    try:
        a, b = load_run(args.run_a), load_run(args.run_b)
    except ReportError as error:
        print(f"meshchaos compare: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = args.out or Path("reports") / "compare" / f"{_slug(a)}-vs-{_slug(b)}"
    comparison = compare_runs(a, b)
    out.mkdir(parents=True, exist_ok=True)
    plots = write_compare_plots(out, comparison)
    text = render_compare_markdown(comparison, max_regression=args.max_regression, plots=plots)
    (out / "compare.md").write_text(text, encoding="utf-8")
    print(text, end="")
    print(f"compare: {out / 'compare.md'}")
    if args.max_regression is not None and comparison.regressions(args.max_regression):
        return EXIT_REGRESSION
    return EXIT_OK


def _slug(run: StoredRun) -> str:
    """Name a run for the default output folder: its folder's name (a timestamp by default)."""
    return run.path.resolve().name
