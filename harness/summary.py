"""``summary.json``: the machine-readable result of a run (DESIGN.md 4.3), built from its state.

Pure: it reads the experiment and the measured state and returns plain JSON data. Extensions
beyond the contract (documented in docs/report.md): ``load.uncorrected_latency_ms``,
``load.requests``, ``crashes``, ``interrupted``, ``error``, ``measured_s``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.experiment import Experiment
from harness.recorder import Recorder
from harness.runner import RunState
from harness.slo import check_slo, scope_name
from harness.verdict import overall_verdict

__all__ = ["SCHEMA", "build_summary", "scope_durations"]

SCHEMA = "meshchaos.summary/v1"
_PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))


def scope_durations(state: RunState) -> dict[str, float]:
    """Return how long each recorded scope was measured (phase windows cut at the run's end)."""
    durations = {"all": state.measured_s}
    for phase in state.phases:
        ran = max(0.0, min(phase.end_s, state.measured_s) - phase.start_s)
        key = f"phase={phase.name}"
        durations[key] = durations.get(key, 0.0) + ran
    return durations


def _latency_ms(recorder: Recorder, duration_s: float) -> dict[str, float]:
    if "all" not in recorder.scope_names():
        return {}
    stats = recorder.scope("all", duration_s)
    values = {label: round(stats.percentile_ms(p), 3) for label, p in _PERCENTILES}
    values["max"] = round(stats.max_ms, 3)
    values["mean"] = round(stats.mean_ms, 3)
    return values


def _measured_scope(where: Mapping[str, str], load_target: str) -> str:
    """Return the recorded scope an SLO's ``where`` selects.

    The load generator measures the load target, so ``service: <target>`` is the same scope as
    no service at all. Other services and edges are measured by the sidecars (coming).
    """
    if where.get("service") == load_target and "edge" not in where:
        where = {key: value for key, value in where.items() if key != "service"}
    return scope_name(where)


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
    results = []
    for slo in experiment.slos:
        scope = _measured_scope(slo.where, experiment.load.target)
        measured = (
            state.latency.scope(scope, durations.get(scope, state.measured_s))
            if scope in recorded
            else None
        )
        results.append(
            check_slo(slo.name, slo.objective, slo.where, slo.severity, measured,
                      dropped=state.dropped)
        )  # fmt: skip
    measured_s = state.measured_s
    all_requests = state.latency.scope("all", measured_s).requests if "all" in recorded else 0
    verdict = overall_verdict(results)
    if state.interrupted or error is not None:
        verdict = "fail"
    summary: dict[str, Any] = {
        "schema": SCHEMA,
        "experiment": {
            "name": experiment.name,
            "seed": experiment.seed,
            "sha256": experiment.sha256,
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
        "faults": [
            {
                "name": fault.spec.name,
                "target": str(fault.spec.target),
                "kind": fault.spec.kind,
                "applied_at_s": _round(fault.applied_at_s),
                "removed_at_s": _round(fault.removed_at_s),
            }
            for fault in state.faults
        ],
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
        "verdict": verdict,
    }
    if state.interrupted:
        summary["interrupted"] = True
    if error is not None:
        summary["error"] = error
    return summary


def _rate(count: int, duration_s: float) -> float:
    return round(count / duration_s, 3) if duration_s > 0 else 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
