"""The SLO language and its evaluation (pure: no trio, no I/O).

An objective reads ``METRIC OP VALUE``, for instance ``p99 < 250ms``, ``error_rate < 0.5%``,
``availability >= 99.5%``, ``throughput >= 190/s`` or ``dropped == 0``; the value may also be
relative to the same scope in the baseline phase: ``p99 <= baseline * 1.2``,
``error_rate <= baseline + 0.5%``. :func:`parse_objective` turns the text into an
:class:`Objective` whose threshold is normalised (seconds for latencies and durations, a
fraction for ratios, per second for rates, a plain number for counts), and names the character
where the text goes wrong when it cannot; :meth:`Objective.canonical` prints it back.

:func:`evaluate` compares an objective with the statistics of one scope (anything that
satisfies :class:`Measured`), and with the baseline's for a relative one, and gives the
observed value in the objective's display unit (milliseconds, percent, per second, plain).
:func:`measure_recovery` computes ``recovery_time`` from one-second intervals.
:func:`check_slo` ties parsing, scope naming and evaluation into one :class:`SloResult`, the
unit of ``summary.json``'s ``slos`` list.

The reference for users is docs/slo.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

__all__ = [
    "METRICS",
    "OPERATORS",
    "RECOVERY_TOLERANCE",
    "SCOPE_KEYS",
    "SEVERITIES",
    "STATUS_CLASSES",
    "IntervalStats",
    "Measured",
    "Objective",
    "ObjectiveError",
    "Recovery",
    "SloResult",
    "check_slo",
    "evaluate",
    "measure_recovery",
    "parse_objective",
    "scope_name",
]

OPERATORS = ("<", "<=", ">", ">=", "==")
"""The comparison operators of the language."""

SEVERITIES = ("error", "warn")
"""An ``error`` SLO that fails fails the run; a ``warn`` SLO that fails is only reported."""

SCOPE_KEYS = ("phase", "service", "edge", "route", "status")
"""The keys of an SLO's ``where``, in the order a scope name lists them."""

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "connect", "reset", "timeout")
"""The values of ``where.status``: a response's class, or how a request got no response."""


@dataclass(frozen=True, slots=True)
class _MetricSpec:
    kind: str
    relative: bool = True  # a baseline of the same scope exists to compare with


# Percentiles (p50, p99.9, p(99.99)) are latency metrics too; they are parsed apart because
# their name carries a number.
_METRICS: dict[str, _MetricSpec] = {
    "mean": _MetricSpec("latency"),
    "max": _MetricSpec("latency"),
    "error_rate": _MetricSpec("ratio"),
    "availability": _MetricSpec("ratio"),
    "throughput": _MetricSpec("rate"),
    "dropped": _MetricSpec("count", relative=False),
    # From the sidecars' edge counters (harness/edges.py): no baseline comparison yet.
    "retry_amplification": _MetricSpec("count", relative=False),
    "ejections": _MetricSpec("count", relative=False),
    "recovery_time": _MetricSpec("duration", relative=False),
}

METRICS = ("pNN", *_METRICS)
"""The metric names of the language; ``pNN`` stands for any percentile (p50, p99.9, p(99.99))."""

# Per unit kind: the units accepted after the number, each as (multiplier, divisor) to the
# normalised unit (a division by an exact integer keeps 250ms exactly 0.25 s), or None when a
# bare number is the only form.
_SECONDS = {"us": (1, 1_000_000), "µs": (1, 1_000_000), "ms": (1, 1000), "s": (1, 1)}
_UNITS: dict[str, dict[str, tuple[int, int]]] = {
    "latency": _SECONDS,
    "duration": {**_SECONDS, "m": (60, 1)},
    "ratio": {"%": (1, 100)},
    "rate": {"/s": (1, 1), "/m": (1, 60), "/h": (1, 3600)},
    "count": {},
}
_UNIT_HINTS = {
    "latency": "needs a unit (us, ms, s), such as 250ms",
    "duration": "needs a unit (ms, s, m), such as 10s",
    "ratio": "takes a percentage such as 0.5% or a fraction such as 0.005",
    "rate": "needs a unit (/s, /m, /h), such as 190/s",
    "count": "takes a bare number, such as 0 or 1.2",
}
# How a normalised value is shown: the factor to the display unit and the unit's suffix.
_DISPLAY: dict[str, tuple[float, str]] = {
    "latency": (1000.0, "ms"),
    "duration": (1.0, "s"),
    "ratio": (100.0, "%"),
    "rate": (1.0, "/s"),
    "count": (1.0, ""),
}
# How :meth:`Objective.canonical` writes a threshold: the display unit when the number in it
# reads back exactly, else the normalised unit (which always does).
_CANONICAL: dict[str, tuple[tuple[str, int], str]] = {
    "latency": (("ms", 1000), "s"),
    "duration": (("s", 1), "s"),
    "ratio": (("%", 100), ""),
    "rate": (("/s", 1), "/s"),
    "count": (("", 1), ""),
}

_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_PERCENTILE = re.compile(r"p(?:\((?P<paren>[^)]*)\)|(?P<bare>\d+(?:\.\d*)?|\.\d+))")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATOR = re.compile(r"[=!<>]+")
_UNIT = re.compile(r"%|/\s*[A-Za-z]+|[A-Za-zµ]+")
_SPACE = re.compile(r"\s*")
_BASELINE = re.compile(r"baseline\b")
_RELATIVE_OPS = ("*", "+", "-")


class ObjectiveError(ValueError):
    """An objective's text is not ``METRIC OP VALUE``.

    ``column`` is the 1-based character of ``text`` where the problem is, so that a loader can
    point at the exact column of a YAML file.
    """

    def __init__(self, reason: str, text: str, column: int) -> None:
        super().__init__(f"objective {text!r}, character {column}: {reason}")
        self.reason = reason
        self.text = text
        self.column = column


@dataclass(frozen=True, slots=True)
class Objective:
    """One parsed objective, such as ``p99 < 250ms`` or ``p99 <= baseline * 1.2``.

    ``metric`` is ``"percentile"`` (with ``percentile`` set) or one of the other names of
    :data:`METRICS`. An absolute objective (``relative`` None) has its ``threshold``
    normalised: seconds for ``latency`` and ``duration``, a fraction for ``ratio``, per second
    for ``rate``, a plain number for ``count``. A relative one compares with the baseline's
    value: ``relative`` is ``"*"`` (``threshold`` is a plain factor) or ``"+"``/``"-"``
    (``threshold`` is a normalised offset).
    """

    text: str
    metric: str
    percentile: float | None
    op: str
    threshold: float
    unit_kind: str
    relative: str | None = None

    @property
    def label(self) -> str:
        """The metric as written in canonical form: ``p99.9``, ``error_rate``."""
        if self.percentile is not None:
            return f"p{_plain(self.percentile)}"
        return self.metric

    @property
    def display_threshold(self) -> float:
        """An absolute threshold in the display unit (ms, percent, per second, plain).

        For a relative objective, the offset in the display unit (or the factor).
        """
        if self.relative == "*":
            return self.threshold
        return self.threshold * _DISPLAY[self.unit_kind][0]

    def resolve(self, baseline: float) -> float:
        """Return the threshold in the display unit, given the baseline's observed value."""
        match self.relative:
            case "*":
                return baseline * self.threshold
            case "+":
                return baseline + self.display_threshold
            case "-":
                return baseline - self.display_threshold
        return self.display_threshold

    def canonical(self) -> str:
        """Print the objective in canonical form; it parses back to the same objective.

        ``p99 < 250ms``, ``error_rate <= baseline + 0.5%``, ``p99 <= baseline * 1.2``.
        """
        head = f"{self.label} {self.op} "
        if self.relative == "*":
            return head + (
                "baseline" if self.threshold == 1 else f"baseline * {_plain(self.threshold)}"
            )
        value = _canonical_value(self.threshold, self.unit_kind)
        if self.relative is not None:
            return head + f"baseline {self.relative} {value}"
        return head + value


def _plain(number: float) -> str:
    """Write a float in positional notation, the shortest text that reads back exactly."""
    text = format(Decimal(repr(float(number))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _canonical_value(threshold: float, kind: str) -> str:
    (unit, factor), fallback = _CANONICAL[kind]
    shown = threshold * factor
    if shown / factor == threshold and not (kind == "ratio" and shown > 100):
        return _plain(shown) + unit
    return _plain(threshold) + fallback


class Measured(Protocol):
    """The statistics of one scope that objectives are checked against.

    Latencies are milliseconds measured from each request's intended start time; ``error_rate``
    is ``errors / requests``; ``throughput_rps`` is ``requests / duration_s``.
    """

    @property
    def requests(self) -> int:
        """Requests completed in the scope."""

    @property
    def errors(self) -> int:
        """Requests among them that failed."""

    @property
    def duration_s(self) -> float:
        """Measured time the scope covers, in seconds."""

    @property
    def error_rate(self) -> float:
        """Errors per request, a fraction in [0, 1]."""

    @property
    def throughput_rps(self) -> float:
        """Completed requests per second."""

    @property
    def mean_ms(self) -> float:
        """Mean latency in milliseconds."""

    @property
    def max_ms(self) -> float:
        """Largest latency in milliseconds."""

    def percentile_ms(self, percentile: float) -> float:
        """Latency at ``percentile`` (in (0, 100)) in milliseconds."""


class IntervalStats(Protocol):
    """One interval of a scope (:class:`harness.recorder.Interval` satisfies it)."""

    @property
    def start_s(self) -> float:
        """Start of the interval, seconds after the start of measurement."""

    @property
    def end_s(self) -> float:
        """End of the interval (excluded)."""

    @property
    def requests(self) -> int:
        """Requests whose intended start fell in the interval."""

    @property
    def errors(self) -> int:
        """Requests among them that failed."""

    def percentile_ms(self, percentile: float) -> float:
        """Latency at ``percentile`` in milliseconds."""


@dataclass(frozen=True, slots=True)
class Recovery:
    """The measured ``recovery_time`` of a scope.

    ``time_s`` is None when it could not be measured; ``reason`` then says why. A scope that
    never recovered has ``time_s`` up to the end of the run and the reason
    ``not recovered by the end of the run``: the true recovery time is longer.
    """

    time_s: float | None
    reason: str = ""


RECOVERY_TOLERANCE = 0.10
"""How close to the baseline a one-second interval must be to count as recovered."""

_NOT_RECOVERED = "not recovered by the end of the run"


def measure_recovery(
    intervals: Iterable[IntervalStats],
    baseline: Measured | None,
    fault_end_s: float | None,
    end_s: float,
) -> Recovery:
    """Return the time from ``fault_end_s`` until a one-second interval is back to normal.

    Back to normal: the interval saw requests, its p99 is at most the baseline's p99 + 10 %,
    and its errors are at most what the baseline's error rate + 10 % predicts for its requests,
    rounded up (so a baseline without errors allows none). The first interval that ends after
    the fault does counts; recovery is ``max(0, its start - fault_end_s)``. Never back: the time
    until ``end_s`` (the end of the run), with a reason.
    """
    if fault_end_s is None:
        return Recovery(None, "no fault ends before the end of the measurement")
    if end_s <= fault_end_s:
        return Recovery(None, "the run ended before the last fault did")
    if baseline is None or baseline.requests == 0:
        return Recovery(None, "no requests in the baseline to recover to")
    p99_limit = baseline.percentile_ms(99.0) * (1 + RECOVERY_TOLERANCE)
    error_limit = baseline.error_rate * (1 + RECOVERY_TOLERANCE)
    for interval in intervals:
        if interval.end_s <= fault_end_s or interval.start_s >= end_s:
            continue
        if (
            interval.requests > 0
            and interval.percentile_ms(99.0) <= p99_limit
            # A small tolerance keeps 1.1 * 0.1 * 10 (1.1000000000000003) at 1 error allowed.
            and interval.errors <= math.ceil(error_limit * interval.requests - 1e-9)
        ):
            return Recovery(max(0.0, interval.start_s - fault_end_s))
    return Recovery(end_s - fault_end_s, _NOT_RECOVERED)


@dataclass(frozen=True, slots=True)
class SloResult:
    """The outcome of one SLO: what was asked, where, what was seen and whether it held.

    ``threshold_text`` is the resolved threshold of a relative objective (``240ms`` for
    ``p99 <= baseline * 1.2`` over a baseline of 200 ms), empty for an absolute one.
    ``skipped`` marks an SLO whose scope the run never reached (it ended early).
    """

    name: str
    objective: str
    where: Mapping[str, str]
    scope: str
    observed: float | None
    observed_text: str
    passed: bool
    severity: str
    reason: str
    threshold_text: str = ""
    skipped: bool = False

    def to_json(self) -> dict[str, object]:
        """Return the entry of ``summary.json``'s ``slos`` list (optional keys only when set)."""
        entry: dict[str, object] = {
            "name": self.name,
            "objective": self.objective,
            "where": dict(self.where),
            "scope": self.scope,
            "observed": self.observed,
            "observed_text": self.observed_text,
            "passed": self.passed,
            "severity": self.severity,
        }
        if self.reason:
            entry["reason"] = self.reason
        if self.threshold_text:
            entry["threshold_text"] = self.threshold_text
        if self.skipped:
            entry["skipped"] = True
        return entry


class _Scanner:
    """A cursor over an objective's text that reports errors at its position."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> None:
        match = _SPACE.match(self.text, self.pos)
        assert match is not None  # \s* always matches
        self.pos = match.end()

    def take(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        match = pattern.match(self.text, self.pos)
        if match is not None:
            self.pos = match.end()
        return match

    def error(self, reason: str, pos: int | None = None) -> ObjectiveError:
        return ObjectiveError(reason, self.text, (self.pos if pos is None else pos) + 1)


def parse_objective(text: str) -> Objective:
    """Parse ``METRIC OP VALUE`` (for instance ``p99 < 250ms``) into an :class:`Objective`.

    VALUE is a number with its unit, or ``baseline``, ``baseline * FACTOR``,
    ``baseline + VALUE`` or ``baseline - VALUE``. Raises :class:`ObjectiveError` (a
    ``ValueError``) naming what is wrong and at which character.
    """
    scanner = _Scanner(text)
    scanner.skip_space()
    if scanner.pos == len(text):
        raise scanner.error("empty objective; write METRIC OP VALUE, such as 'p99 < 250ms'")
    metric, percentile, kind = _parse_metric(scanner)
    scanner.skip_space()
    op = _parse_operator(scanner)
    scanner.skip_space()
    relative: str | None = None
    baseline_at = scanner.pos
    if scanner.take(_BASELINE) is not None:
        relative, threshold = _parse_relative(scanner, metric, kind, baseline_at)
    else:
        threshold = _parse_value(scanner, metric, kind)
    scanner.skip_space()
    if scanner.pos != len(text):
        raise scanner.error(f"unexpected {text[scanner.pos :]!r} after the value")
    return Objective(text, metric, percentile, op, threshold, kind, relative)


def _parse_metric(scanner: _Scanner) -> tuple[str, float | None, str]:
    start = scanner.pos
    match = scanner.take(_PERCENTILE)
    if match is not None:
        return "percentile", _percentile(scanner, match), "latency"
    if scanner.text.startswith("p(", start):
        raise scanner.error("unclosed 'p(': write a percentile such as p(99.99)", start)
    name = scanner.take(_NAME)
    known = "pNN (p50, p99.9, p(99.99)), " + ", ".join(_METRICS)
    if name is None:
        raise scanner.error(f"expected a metric: {known}")
    if name.group() not in _METRICS:
        raise scanner.error(f"unknown metric {name.group()!r}; known metrics: {known}", start)
    return name.group(), None, _METRICS[name.group()].kind


def _percentile(scanner: _Scanner, match: re.Match[str]) -> float:
    group = "bare" if match.group("bare") is not None else "paren"
    number_start = match.start(group)
    number = match.group(group).strip()
    if not _NUMBER.fullmatch(number):
        raise scanner.error(f"expected a percentile number in p(...), got {number!r}", number_start)
    percentile = float(number)
    if not 0 < percentile < 100:
        raise scanner.error(
            f"percentile must be in (0, 100), got {number} (use max for the largest value)",
            number_start,
        )
    return percentile


def _parse_operator(scanner: _Scanner) -> str:
    start = scanner.pos
    match = scanner.take(_OPERATOR)
    if match is None or match.group() not in OPERATORS:
        found = f", got {match.group()!r}" if match else ""
        raise scanner.error(f"expected an operator ({', '.join(OPERATORS)}){found}", start)
    return match.group()


def _parse_relative(
    scanner: _Scanner, metric: str, kind: str, baseline_at: int
) -> tuple[str, float]:
    """Parse what follows ``baseline``: nothing, ``* FACTOR``, ``+ VALUE`` or ``- VALUE``."""
    if not _METRICS.get(metric, _MetricSpec(kind)).relative:
        why = {
            "dropped": "counts the whole run",
            "recovery_time": "is measured from the end of the faults",
        }.get(metric, "is compared with absolute values only")
        raise scanner.error(
            f"{metric} {why}: it has no baseline to compare with; give a value", baseline_at
        )
    scanner.skip_space()
    if scanner.pos == len(scanner.text):
        return "*", 1.0
    relative = scanner.text[scanner.pos]
    if relative not in _RELATIVE_OPS:
        raise scanner.error("expected *, + or - after baseline, such as 'baseline * 1.2'")
    scanner.pos += 1
    scanner.skip_space()
    if relative != "*":
        return relative, _parse_value(scanner, metric, kind)
    factor = scanner.take(_NUMBER)
    if factor is None:
        raise scanner.error("expected a factor after 'baseline *', such as 1.2")
    return "*", float(factor.group())


def _parse_value(scanner: _Scanner, metric: str, kind: str) -> float:
    number_match = scanner.take(_NUMBER)
    if number_match is None:
        raise scanner.error("expected a non-negative number (or baseline)")
    number = float(number_match.group())
    unit_start = scanner.pos
    scanner.skip_space()
    unit_match = scanner.take(_UNIT)
    if unit_match is None:
        scanner.pos = unit_start
        return _bare_value(scanner, metric, kind, number_match)
    unit = re.sub(r"\s+", "", unit_match.group())
    units = _UNITS[kind]
    if unit not in units:
        subject = _subject(metric, kind)
        raise scanner.error(f"{subject} {_UNIT_HINTS[kind]}, not {unit!r}", unit_match.start())
    if kind == "ratio" and number > 100:
        raise scanner.error(
            f"a percentage cannot exceed 100%, got {number:g}%", number_match.start()
        )
    multiplier, divisor = units[unit]
    return number * multiplier / divisor


def _bare_value(scanner: _Scanner, metric: str, kind: str, number_match: re.Match[str]) -> float:
    number = float(number_match.group())
    if kind == "count":
        return number
    if kind == "ratio":
        if number > 1:
            raise scanner.error(
                f"a bare number for {metric} is a fraction in [0, 1]; "
                f"write {number:g}% for percent",
                number_match.start(),
            )
        return number
    raise scanner.error(f"{_subject(metric, kind)} {_UNIT_HINTS[kind]}")


def _subject(metric: str, kind: str) -> str:
    # Every percentile, mean and max share one wording: "latency objective needs a unit".
    return "latency objective" if kind == "latency" else f"{metric} objective"


def scope_name(where: Mapping[str, str]) -> str:
    """Name the scope an SLO's ``where`` selects: ``all``, ``phase=fault,service=payments``.

    Keys come in the fixed order of :data:`SCOPE_KEYS` (phase, service, edge, route, status);
    ``phase: all`` is the default and is left out of the name. An empty ``where`` is ``all``
    (the whole measured time at the load target).
    """
    unknown = sorted(set(where) - set(SCOPE_KEYS))
    if unknown:
        raise ValueError(
            f"unknown where key(s) {', '.join(unknown)}; known: {', '.join(SCOPE_KEYS)}"
        )
    parts = [
        f"{key}={where[key]}"
        for key in SCOPE_KEYS
        if key in where and not (key == "phase" and where[key] == "all")
    ]
    return ",".join(parts) or "all"


# Which side of the threshold an operator accepts: (below, equal, above).
_ACCEPTS = {
    "<": (True, False, False),
    "<=": (True, True, False),
    "==": (False, True, False),
    ">=": (False, True, True),
    ">": (False, False, True),
}


def evaluate(
    objective: Objective,
    measured: Measured | None,
    *,
    dropped: int = 0,
    baseline: Measured | None = None,
    recovery: Recovery | None = None,
    counters: Mapping[str, int] | None = None,
) -> tuple[float | None, bool, str]:
    """Check ``objective`` against one scope: return (observed, passed, reason).

    ``observed`` is in the objective's display unit (ms, percent, per second, plain) and is
    None when nothing could be observed; ``reason`` says why (``no edge measurement in scope``, ``no
    requests in scope``) and is empty otherwise. ``dropped`` counts the requests the load
    generator could not start; ``baseline`` is the same scope in the baseline phase (for a
    relative objective); ``recovery`` is the scope's measured recovery time. Neither
    ``dropped`` nor ``recovery`` needs ``measured``. ``counters`` are the scope's totals of the
    sidecars' edge counters: ``retry_amplification`` is ``attempts / requests``, ``ejections``
    the ``ejections``; None when the scope holds no edge measurement.
    """
    if objective.metric == "recovery_time":
        return _evaluate_recovery(objective, recovery)
    if objective.metric == "dropped":
        observed = float(dropped)
    elif objective.metric == "ejections":
        if counters is None:
            return None, False, "no edge measurement in scope"
        observed = float(counters.get("ejections", 0))
    elif measured is None or measured.requests == 0:
        return None, False, "no requests in scope"
    elif objective.metric == "retry_amplification" and counters is None:
        return None, False, "no edge measurement in scope"
    else:
        observed = _observe(objective, measured, counters)
    threshold = _threshold(objective, baseline)
    if threshold is None:
        return observed, False, "no requests in the baseline to compare with"
    return observed, _holds(observed, objective.op, threshold), ""


def _evaluate_recovery(
    objective: Objective, recovery: Recovery | None
) -> tuple[float | None, bool, str]:
    if recovery is None or recovery.time_s is None:
        return None, False, recovery.reason if recovery else "not measured"
    held = _holds(recovery.time_s, objective.op, objective.display_threshold)
    if recovery.reason:
        # Never recovered: the true time is longer, so only a lower bound can hold.
        held = held and objective.op in (">", ">=")
    return recovery.time_s, held, recovery.reason


def _threshold(objective: Objective, baseline: Measured | None) -> float | None:
    """Return the threshold in the display unit; None when the baseline is missing."""
    if objective.relative is None:
        return objective.display_threshold
    if baseline is None or baseline.requests == 0:
        return None
    return objective.resolve(_observe(objective, baseline))


def _observe(
    objective: Objective, measured: Measured, counters: Mapping[str, int] | None = None
) -> float:
    if objective.percentile is not None:
        return measured.percentile_ms(objective.percentile)
    match objective.metric:
        case "mean":
            return measured.mean_ms
        case "max":
            return measured.max_ms
        case "error_rate":
            return measured.error_rate * 100
        case "availability":
            return (1 - measured.error_rate) * 100
        case "throughput":
            return measured.throughput_rps
        case "retry_amplification":
            return counters.get("attempts", 0) / measured.requests if counters else 0.0
    raise AssertionError(f"no observer for metric {objective.metric!r}")


def _holds(observed: float, op: str, threshold: float) -> bool:
    # Values within a relative 1e-9 count as equal, so that unit conversions (250ms written,
    # 0.25 s stored, 250.0 ms observed) never flip a boundary.
    if math.isclose(observed, threshold, rel_tol=1e-9, abs_tol=1e-12):
        side = 1
    else:
        side = 0 if observed < threshold else 2
    return _ACCEPTS[op][side]


def _format_value(value: float | None, objective: Objective, references: list[float]) -> str:
    """Format like ``41.3ms``, ``0.12%``, ``49.8/s``, with the digits needed to tell it apart.

    Three significant digits, and more while the text would read the same as one of
    ``references`` (the threshold, or for a ratio 0% and 100%) that the value is not:
    ``250.07ms`` failing ``<= 250ms`` must not be shown as ``250ms``.
    """
    if value is None:
        return "n/a"
    suffix = _DISPLAY[objective.unit_kind][1]
    if objective.unit_kind == "ratio":
        references = [*references, 0.0, 100.0]
    decimals = 0 if value == 0 else max(0, 2 - math.floor(math.log10(abs(value))))
    while decimals < 6 and any(
        value != reference and round(value, decimals) == round(reference, decimals)
        for reference in references
    ):
        decimals += 1
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + suffix


def check_slo(
    name: str | None,
    objective_text: str,
    where: Mapping[str, str],
    severity: str,
    measured: Measured | None,
    *,
    dropped: int = 0,
    baseline: Measured | None = None,
    recovery: Recovery | None = None,
    counters: Mapping[str, int] | None = None,
) -> SloResult:
    """Parse, scope and evaluate one SLO into a :class:`SloResult`.

    ``measured`` is the statistics of the scope ``where`` selects (None when the scope saw
    nothing); ``baseline``, ``dropped``, ``recovery`` and ``counters`` are as for
    :func:`evaluate`. Without a
    ``name`` the SLO is named by its objective, plus its scope when that is not ``all``. Raises
    ``ValueError`` for a bad objective, ``where`` or ``severity``.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    objective = parse_objective(objective_text)
    scope = scope_name(where)
    if not name:
        name = objective_text if scope == "all" else f"{objective_text} ({scope})"
    observed, passed, reason = evaluate(
        objective,
        measured,
        dropped=dropped,
        baseline=baseline,
        recovery=recovery,
        counters=counters,
    )
    threshold = _threshold(objective, baseline)
    references = [] if threshold is None else [threshold]
    threshold_text = ""
    if objective.relative is not None and threshold is not None:
        threshold_text = _format_value(threshold, objective, [])
    return SloResult(
        name=name,
        objective=objective_text,
        where=dict(where),
        scope=scope,
        observed=observed,
        observed_text=_format_value(observed, objective, references),
        passed=passed,
        severity=severity,
        reason=reason,
        threshold_text=threshold_text,
    )
