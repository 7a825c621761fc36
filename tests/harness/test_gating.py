"""SLO checks over a run's measurements: at the end, at the end of the baseline, every second."""

from __future__ import annotations

import pytest

from harness.experiment import Experiment, parse_experiment
from harness.gating import (
    Abort,
    Measurements,
    ScopePlan,
    check_all,
    check_steady_state,
    guard_rail_failure,
    steady_state_at,
)
from harness.phases import phase_windows
from harness.recorder import Recorder
from harness.runner import RunState
from harness.summary import build_summary

# Baseline 0-4 s, fault 4-7 s, recovery 7-10 s.
BASE = """\
apiVersion: meshchaos/v1
kind: Experiment
metadata: {name: gate}
spec:
  duration: 10s
  services:
    - {name: frontend, script: [{sleep: 2ms}]}
  load:
    target: frontend
    rate: 10/s
    requests: [{path: /pay}, {path: /cart}]
  faults:
    - {target: frontend, start: 4s, duration: 3s, delay: {fixed: 50ms}}
  slos:
"""


def experiment(*slos: str) -> Experiment:
    return parse_experiment(BASE + "".join(f"    - {slo}\n" for slo in slos), "gate.yaml")


def record(
    exp: Experiment,
    recorder: Recorder,
    seconds: range,
    latency_s: float,
    *,
    errors: int = 0,
    route: str = "/pay",
) -> None:
    """Record ten requests a second, the first ``errors`` of each second failing (5xx)."""
    plan = ScopePlan(exp)
    windows = phase_windows(exp)
    for second in seconds:
        for index in range(10):
            at_s = second + index / 10
            phase = next(w.name for w in windows if w.start_s <= at_s < w.end_s)
            status = "5xx" if index < errors else "2xx"
            recorder.record(
                plan.scopes(phase, route, status), at_s, latency_s, error=index < errors
            )


def measured(exp: Experiment, recorder: Recorder, at_s: float, dropped: int = 0) -> Measurements:
    return Measurements(recorder, phase_windows(exp), at_s, dropped)


def test_scope_plan_adds_only_the_scopes_slos_ask_for() -> None:
    exp = experiment(
        '{objective: "p99 < 1s", where: {route: /pay, phase: fault}}',
        '{objective: "error_rate <= baseline + 1%", where: {status: 5xx, service: frontend}}',
        '{objective: "p99 < 1s"}',
    )
    plan = ScopePlan(exp)
    assert plan.scopes("fault", "/pay", "2xx") == ("all", "phase=fault", "phase=fault,route=/pay")
    assert plan.scopes("baseline", "/cart", "5xx") == (
        "all",
        "phase=baseline",
        "status=5xx",
        "phase=baseline,status=5xx",
    )
    assert plan.scopes(None, "/cart", "2xx") == ("all",)


def test_durations_cut_the_phases_at_the_measured_time() -> None:
    exp = experiment('{objective: "p99 < 1s"}')
    at = measured(exp, Recorder(), 5.5)
    assert at.duration_s({}) == 5.5
    assert at.duration_s({"phase": "baseline"}) == 4.0
    assert at.duration_s({"phase": "fault", "route": "/pay"}) == 1.5
    assert at.duration_s({"phase": "recovery"}) == 0.0


def test_relative_and_recovery_objectives_at_the_end() -> None:
    exp = experiment(
        '{name: relative, objective: "p99 <= baseline * 2", where: {phase: fault}}',
        '{name: recovers, objective: "recovery_time < 2s"}',
        '{name: routed, objective: "p99 < 20ms", where: {route: /pay}}',
    )
    recorder = Recorder()
    record(exp, recorder, range(4), 0.010)
    record(exp, recorder, range(4, 7), 0.030)  # 3x the baseline
    record(exp, recorder, range(7, 8), 0.030)
    record(exp, recorder, range(8, 10), 0.010)  # back 1 s after the fault
    relative, recovers, routed = check_all(exp, measured(exp, recorder, 10.0))
    assert (relative.passed, relative.observed_text, relative.threshold_text) == (
        False,
        "30ms",
        "20ms",
    )
    assert (recovers.passed, recovers.observed) == (True, 1.0)
    assert (routed.passed, routed.observed_text, routed.scope) == (False, "30ms", "route=/pay")


def test_steady_state_is_checked_at_the_end_of_the_baseline() -> None:
    exp = experiment(
        '{name: steady, objective: "p99 < 5ms", steadyState: true}',
        '{name: late, objective: "p99 < 1s", where: {phase: fault}}',
    )
    assert steady_state_at(exp) == 4.0
    recorder = Recorder()
    record(exp, recorder, range(4), 0.010)
    steady = check_steady_state(exp, measured(exp, recorder, 4.0))
    assert not steady.met
    assert [(r.name, r.scope, r.observed_text) for r in steady.failed] == [
        ("steady", "phase=baseline", "10ms")
    ]
    # The run ends there: the fault phase's SLO is not reached, not failed.
    steady_result, late = check_all(
        exp, measured(exp, recorder, 4.0), ended_early="steady state not met"
    )
    assert (steady_result.passed, steady_result.skipped) == (False, False)
    assert (late.skipped, late.reason) == (True, "not reached: steady state not met")


def test_no_steady_state_check_without_faults_or_steady_state_slos() -> None:
    assert steady_state_at(experiment('{objective: "p99 < 1s"}')) is None


def test_a_guard_rail_waits_for_its_delay_then_stops_the_run() -> None:
    exp = experiment('{name: guard, objective: "error_rate < 10%", abortOnFail: true, delay: 2s}')
    recorder = Recorder()
    record(exp, recorder, range(2), 0.010, errors=5)
    assert guard_rail_failure(exp, measured(exp, recorder, 1.0)) is None  # before its delay
    failed = guard_rail_failure(exp, measured(exp, recorder, 2.0))
    assert failed is not None
    assert (failed.name, failed.observed_text) == ("guard", "50%")


def test_a_guard_rail_that_cannot_decide_waits() -> None:
    exp = experiment(
        '{objective: "p99 < 5ms", where: {phase: fault}, abortOnFail: true}',
        '{objective: "p99 <= baseline", where: {phase: all}, abortOnFail: true}',
        '{objective: "retry_amplification < 1", abortOnFail: true}',
    )
    recorder = Recorder()
    record(exp, recorder, range(3), 0.010)
    record(exp, recorder, range(3, 4), 0.040)
    # In the baseline: no fault-phase requests yet, the baseline is not over, and the
    # unmeasured metric never stops a run.
    assert guard_rail_failure(exp, measured(exp, recorder, 3.9)) is None
    record(exp, recorder, range(4, 5), 0.040)
    failed = guard_rail_failure(exp, measured(exp, recorder, 5.0))
    assert failed is not None
    assert failed.scope == "phase=fault"


def test_summary_says_the_steady_state_was_not_met() -> None:
    exp = experiment(
        '{name: steady, objective: "p99 < 5ms", steadyState: true}',
        '{name: late, objective: "p99 < 1s", where: {phase: fault}}',
    )
    state = RunState(phases=phase_windows(exp), measured_s=4.0)
    record(exp, state.latency, range(4), 0.010)
    state.steady_state = check_steady_state(exp, measured(exp, state.latency, 4.0))
    summary = build_summary(exp, state, mode="real", started_at="", finished_at="", versions={})
    assert summary["verdict"] == "fail"
    assert summary["steady_state"]["met"] is False
    assert summary["steady_state"]["checked_at_s"] == 4.0
    assert [slo["name"] for slo in summary["steady_state"]["failed"]] == ["steady"]
    assert summary["slos"][1]["skipped"] is True


@pytest.mark.parametrize("errors", [0, 5])
def test_summary_of_an_aborted_run_fails(errors: int) -> None:
    exp = experiment('{name: guard, objective: "error_rate < 10%", abortOnFail: true}')
    state = RunState(phases=phase_windows(exp), measured_s=2.0)
    record(exp, state.latency, range(2), 0.010, errors=errors)
    failed = guard_rail_failure(exp, measured(exp, state.latency, 2.0))
    assert (failed is None) == (errors == 0)
    if failed is not None:
        state.aborted = Abort(2.0, failed)
    summary = build_summary(exp, state, mode="real", started_at="", finished_at="", versions={})
    assert summary["verdict"] == ("pass" if errors == 0 else "fail")
    assert ("aborted" in summary) == (errors > 0)
