"""Checking an experiment's SLOs against what a run measured (pure: no trio, no I/O).

The same check runs at three moments:

- at the end of the run, for every SLO (:func:`check_all`, the ``slos`` of ``summary.json``);
- at the end of the baseline, for the ``steadyState`` SLOs (:func:`check_steady_state`): when
  one fails, no fault is injected and the run ends (Chaos Toolkit's steady-state hypothesis);
- every second while the run goes, for the ``abortOnFail`` SLOs past their ``delay``
  (:func:`guard_rail_failure`): the first that fails stops the run (k6's ``abortOnFail``).

A check reads a :class:`Measurements`, the recorder and the phase windows cut at the measured
time so far, so the runner's only job is to call these at the right moment. A guard rail that
cannot decide yet (its phase has not started, its baseline is not complete) waits: only an
observed value that breaks the objective stops a run.

:class:`ScopePlan` says which recorded scopes each request of the load belongs to: ``all`` and
its phase always, and the route and status scopes that some SLO asks for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.experiment import Experiment, SloSpec
from harness.phases import Phase
from harness.recorder import Recorder, ScopeStats
from harness.slo import (
    Recovery,
    SloResult,
    check_slo,
    measure_recovery,
    parse_objective,
    scope_name,
)

__all__ = [
    "Abort",
    "Measurements",
    "ScopePlan",
    "SteadyState",
    "check",
    "check_all",
    "check_steady_state",
    "guard_rail_failure",
    "measured_where",
    "steady_state_at",
]


@dataclass(frozen=True, slots=True)
class SteadyState:
    """The steady-state check at the end of the baseline: the SLOs that failed, if any."""

    at_s: float
    failed: tuple[SloResult, ...]

    @property
    def met(self) -> bool:
        """Tell whether every steady-state SLO held (the faults were then injected)."""
        return not self.failed


@dataclass(frozen=True, slots=True)
class Abort:
    """A guard rail stopped the run at ``at_s``: ``result`` is the SLO that failed."""

    at_s: float
    result: SloResult


@dataclass(frozen=True, slots=True)
class Measurements:
    """What a run measured in its first ``measured_s`` seconds of measurement."""

    latency: Recorder
    phases: Sequence[Phase]
    measured_s: float
    dropped: int

    def duration_s(self, where: Mapping[str, str]) -> float:
        """Return how long the scope of ``where`` was measured (its phase cut at the end)."""
        phase = where.get("phase", "all")
        if phase == "all":
            return self.measured_s
        return sum(
            max(0.0, min(window.end_s, self.measured_s) - window.start_s)
            for window in self.phases
            if window.name == phase
        )

    def stats(self, where: Mapping[str, str]) -> ScopeStats | None:
        """Return the statistics of the scope of ``where``, None when it saw no request."""
        name = scope_name(where)
        if name not in self.latency.scope_names():
            return None
        return self.latency.scope(name, self.duration_s(where))

    def phase_start_s(self, phase: str) -> float | None:
        """Return when ``phase`` first starts (None when the schedule has no such window)."""
        if phase == "all":
            return 0.0
        return min((w.start_s for w in self.phases if w.name == phase), default=None)


def measured_where(where: Mapping[str, str], load_target: str) -> dict[str, str]:
    """Return the recorded scope an SLO's ``where`` selects.

    The load generator measures the load target, so ``service: <target>`` is the same scope as
    no service at all, and ``phase: all`` the same as no phase. Other services and edges are
    measured by the sidecars (:mod:`harness.edges`).
    """
    result = dict(where)
    if result.get("service") == load_target and "edge" not in result:
        del result["service"]
    if result.get("phase") == "all":
        del result["phase"]
    return result


def _recovery(measurements: Measurements, where: dict[str, str]) -> Recovery:
    """Measure ``recovery_time`` on the scope of ``where`` (which has no phase)."""
    recovery_windows = [w for w in measurements.phases if w.name == "recovery"]
    fault_end_s = recovery_windows[-1].start_s if recovery_windows else None
    name = scope_name(where)
    recorded = name in measurements.latency.scope_names()
    return measure_recovery(
        measurements.latency.iter_intervals(name) if recorded else [],
        measurements.stats({**where, "phase": "baseline"}),
        fault_end_s,
        measurements.measured_s,
    )


def check(slo: SloSpec, measurements: Measurements, load_target: str) -> SloResult:
    """Check one SLO against ``measurements``."""
    objective = parse_objective(slo.objective)
    where = measured_where(slo.where, load_target)
    baseline = None
    if objective.relative is not None:
        baseline = measurements.stats({**where, "phase": "baseline"})
    recovery = None
    if objective.metric == "recovery_time":
        recovery = _recovery(measurements, where)
    stats = measurements.stats(where)
    # Only edge and service scopes hold the sidecars' counters (attempts, ejections).
    edge_scope = stats is not None and ("edge" in where or "service" in where)
    return check_slo(
        slo.name,
        slo.objective,
        slo.where,
        slo.severity,
        stats,
        dropped=measurements.dropped,
        baseline=baseline,
        recovery=recovery,
        counters=stats.counters if edge_scope and stats is not None else None,
    )


def check_all(
    experiment: Experiment, measurements: Measurements, *, ended_early: str | None = None
) -> list[SloResult]:
    """Check every SLO at the end of a run.

    ``ended_early`` says why the run stopped before its end (``steady state not met``, ...):
    an SLO whose phase had not started by then is marked skipped with that reason, rather than
    failed with ``no requests in scope``.
    """
    results = []
    for slo in experiment.slos:
        result = check(slo, measurements, experiment.load.target)
        if ended_early is not None and result.observed is None:
            start_s = measurements.phase_start_s(slo.where.get("phase", "all"))
            if start_s is None or start_s >= measurements.measured_s:
                result = dataclasses.replace(
                    result, skipped=True, reason=f"not reached: {ended_early}"
                )
        results.append(result)
    return results


def steady_state_at(experiment: Experiment) -> float | None:
    """Return when the steady state is checked: the end of the baseline.

    None when there is nothing to check or nothing to hold back (no steady-state SLO, or no
    fault: then the steady-state SLOs are checked at the end with the others).
    """
    if not experiment.faults or not any(slo.steady_state for slo in experiment.slos):
        return None
    return min(fault.start_s for fault in experiment.faults)


def check_steady_state(experiment: Experiment, measurements: Measurements) -> SteadyState:
    """Check the steady-state SLOs on the baseline measured so far.

    A steady-state SLO whose scope saw no request fails: nothing showed the steady state.
    """
    results = (
        check(slo, measurements, experiment.load.target)
        for slo in experiment.slos
        if slo.steady_state
    )
    failed = tuple(r for r in results if not r.passed and r.severity == "error")
    return SteadyState(measurements.measured_s, failed)


def guard_rail_failure(experiment: Experiment, measurements: Measurements) -> SloResult | None:
    """Return the first ``abortOnFail`` SLO that fails now, or None.

    Only SLOs past their ``delay`` are checked, relative ones only once the baseline is over,
    and one that cannot decide (no requests in its scope yet) waits.
    """
    baseline_end_s = min((w.end_s for w in measurements.phases if w.name == "baseline"), default=0)
    for slo in experiment.slos:
        if not slo.abort_on_fail or measurements.measured_s < slo.abort_delay_s:
            continue
        if parse_objective(slo.objective).relative and measurements.measured_s < baseline_end_s:
            continue
        result = check(slo, measurements, experiment.load.target)
        if not result.passed and not result.reason:
            return result
    return None


class ScopePlan:
    """Names the recorded scopes of each request of the load.

    Every request is in ``all`` and in its phase's scope; one whose route or status class some
    SLO selects is also in that SLO's scope (and in its baseline's, for a relative objective,
    and its phase-less one, for ``recovery_time``). The answer is cached per (phase, route,
    status), so the hot path costs one dictionary lookup.
    """

    def __init__(self, experiment: Experiment) -> None:
        wheres: dict[str, dict[str, str]] = {}
        for slo in experiment.slos:
            where = measured_where(slo.where, experiment.load.target)
            if "route" not in where and "status" not in where:
                continue
            objective = parse_objective(slo.objective)
            variants = [where]
            if objective.relative is not None:
                variants.append({**where, "phase": "baseline"})
            if objective.metric == "recovery_time":
                variants.append({**where, "phase": "baseline"})
            for variant in variants:
                wheres[scope_name(variant)] = variant
        self._wheres = list(wheres.items())
        self._cache: dict[tuple[str | None, str, str], tuple[str, ...]] = {}

    def scopes(self, phase: str | None, route: str, status: str) -> tuple[str, ...]:
        """Return the scopes of a request in ``phase`` (None between faults) to ``route``."""
        key = (phase, route, status)
        names = self._cache.get(key)
        if names is None:
            found = ["all"] if phase is None else ["all", f"phase={phase}"]
            for name, where in self._wheres:
                if (
                    where.get("phase", phase) == phase
                    and where.get("route", route) == route
                    and where.get("status", status) == status
                ):
                    found.append(name)
            names = self._cache[key] = tuple(found)
        return names
