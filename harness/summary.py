"""``summary.json``: the machine-readable result of a run (DESIGN.md 4.3), built from its state.

Pure: it reads the experiment and the measured state and returns plain JSON data. Extensions
beyond the contract (documented in docs/report.md and docs/slo.md): ``load.uncorrected_latency_ms``,
``load.requests``, ``crashes``, ``interrupted``, ``error``, ``measured_s``, ``steady_state``,
``aborted``, ``experiment.description``, ``topology``, ``intervals``, and per fault ``fields``,
``replicas`` and (recurring faults, one entry per window) ``window`` (for the report's
topology drawing and per-interval error plots, which ``meshchaos report`` re-renders from here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.chaos import AppliedFault
from harness.experiment import Experiment
from harness.gating import Measurements, check_all
from harness.recorder import Recorder
from harness.runner import RunState
from harness.verdict import overall_verdict

__all__ = ["SCHEMA", "build_summary", "scope_durations"]

SCHEMA = "meshchaos.summary/v1"
_PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))


def scope_durations(state: RunState) -> dict[str, float]:
    """Return how long each recorded scope was measured (phase windows cut at the run's end)."""
    measurements = _measurements(state)
    durations = {}
    for name in state.latency.scope_names():
        phases = [part[6:] for part in name.split(",") if part.startswith("phase=")]
        durations[name] = measurements.duration_s({"phase": phases[0]} if phases else {})
    return durations


def _measurements(state: RunState) -> Measurements:
    return Measurements(state.latency, state.phases, state.measured_s, state.dropped)


def _latency_ms(recorder: Recorder, duration_s: float) -> dict[str, float]:
    if "all" not in recorder.scope_names():
        return {}
    stats = recorder.scope("all", duration_s)
    values = {label: round(stats.percentile_ms(p), 3) for label, p in _PERCENTILES}
    values["max"] = round(stats.max_ms, 3)
    values["mean"] = round(stats.mean_ms, 3)
    return values


def build_summary(
    experiment: Experiment,
    state: RunState,
    *,
    mode: str,
    started_at: str,
    finished_at: str,
    versions: Mapping[str, str],
    error: str | None = None,
) -> dict[str, Any]:
    """Return the ``summary.json`` document of a run."""
    durations = scope_durations(state)
    recorded = state.latency.scope_names()
    scopes = {
        name: state.latency.scope(name, durations.get(name, state.measured_s)).summary()
        for name in recorded
    }
    ended_early = None
    if state.steady_state is not None and not state.steady_state.met:
        ended_early = "steady state not met"
    elif state.aborted is not None:
        ended_early = f"aborted by {state.aborted.result.name!r}"
    elif state.interrupted:
        ended_early = "interrupted"
    results = check_all(experiment, _measurements(state), ended_early=ended_early)
    measured_s = state.measured_s
    all_requests = state.latency.scope("all", measured_s).requests if "all" in recorded else 0
    verdict = overall_verdict(results)
    if state.interrupted or error is not None or ended_early is not None:
        verdict = "fail"
    summary: dict[str, Any] = {
        "schema": SCHEMA,
        "experiment": {
            "name": experiment.name,
            "seed": experiment.seed,
            "sha256": experiment.sha256,
            "description": experiment.description,
        },
        "mode": mode,
        "started_at": started_at,
        "finished_at": finished_at,
        "versions": dict(versions),
        "measured_s": round(measured_s, 3),
        "phases": [
            {"name": "all", "start_s": 0.0, "end_s": experiment.duration_s},
            *({"name": p.name, "start_s": p.start_s, "end_s": p.end_s} for p in state.phases),
        ],
        "faults": [_fault(experiment, fault) for fault in state.faults],
        "scopes": scopes,
        "load": {
            "target": experiment.load.target,
            "target_rps": _rate(all_requests + state.dropped, measured_s),
            "achieved_rps": _rate(all_requests, measured_s),
            "requests": all_requests,
            "dropped": state.dropped,
            "generator_lag_ms": _latency_ms(state.lag, measured_s),
            "uncorrected_latency_ms": _latency_ms(state.uncorrected, measured_s),
        },
        "slos": [result.to_json() for result in results],
        "crashes": list(state.crashes),
        "topology": _topology(experiment),
        "intervals": _interval_errors(state.latency),
        "verdict": verdict,
    }
    if state.steady_state is not None:
        summary["steady_state"] = {
            "met": state.steady_state.met,
            "checked_at_s": round(state.steady_state.at_s, 3),
            "failed": [result.to_json() for result in state.steady_state.failed],
        }
    if state.aborted is not None:
        summary["aborted"] = {
            "at_s": round(state.aborted.at_s, 3),
            "slo": state.aborted.result.to_json(),
        }
    if state.interrupted:
        summary["interrupted"] = True
    if error is not None:
        summary["error"] = error
    return summary


def _fault(experiment: Experiment, fault: AppliedFault) -> dict[str, Any]:
    """Return one window of one fault: the contract's keys, its fields, replicas and window."""
    spec = fault.spec
    entry: dict[str, Any] = {
        "name": spec.name,
        "target": str(spec.target),
        "kind": spec.kind,
        "applied_at_s": _round(fault.applied_at_s),
        "removed_at_s": _round(fault.removed_at_s),
        "fields": {k: v for k, v in spec.fields.items() if k not in ("name", "target")},
    }
    target = spec.target
    if not target.is_edge:
        count = experiment.service(target.service).replicas
        indices = (target.replica,) if target.replica is not None else target.chosen or range(count)
        entry["replicas"] = [f"{target.service}/{index}" for index in indices]
    if fault.window is not None:
        entry["window"] = fault.window
    return entry


def _rate(count: int, duration_s: float) -> float:
    return round(count / duration_s, 3) if duration_s > 0 else 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _topology(experiment: Experiment) -> dict[str, Any]:
    """Return the services, their replicas and whom each calls, for the topology drawing."""
    return {
        "load_target": experiment.load.target,
        "services": [
            {
                "name": service.name,
                "replicas": service.replicas,
                "calls": list(dict.fromkeys(call.service for call in service.calls())),
            }
            for service in experiment.services
        ],
    }


def _interval_errors(recorder: Recorder) -> dict[str, Any]:
    """Return the errors per interval of every scope as ``[index, errors]`` pairs (sparse).

    ``latency.hlog`` holds each interval's latencies but has no room for its error count, so
    the count is kept here; intervals without errors are left out.
    """
    return {
        "length_s": recorder.interval_s,
        "errors": {
            name: [[i.index, i.errors] for i in recorder.iter_intervals(name) if i.errors]
            for name in recorder.scope_names()
        },
    }
