from __future__ import annotations

import textwrap

from harness.experiment import parse_experiment
from harness.phases import Phase, phase_at, phase_windows

BASE = """
apiVersion: meshchaos/v1
kind: Experiment
metadata: {name: phases}
spec:
  duration: 60s
  services: [{name: a}]
  load: {target: a, rate: 10/s}
"""


def _experiment(faults: str = ""):  # type: ignore[no-untyped-def]
    return parse_experiment(BASE + textwrap.indent(faults, "  "), "phases.yaml")


def test_no_faults_is_all_baseline() -> None:
    assert phase_windows(_experiment()) == [Phase("baseline", 0.0, 60.0)]


def test_one_fault_gives_three_phases() -> None:
    windows = phase_windows(
        _experiment("faults: [{target: a, start: 20s, duration: 10s, delay: {fixed: 1ms}}]\n")
    )
    assert windows == [
        Phase("baseline", 0.0, 20.0),
        Phase("fault", 20.0, 30.0),
        Phase("recovery", 30.0, 60.0),
    ]
    assert phase_at(windows, 19.999) == "baseline"
    assert phase_at(windows, 20.0) == "fault"
    assert phase_at(windows, 30.0) == "recovery"


def test_overlapping_faults_merge_and_gaps_belong_to_no_phase() -> None:
    windows = phase_windows(
        _experiment(
            "faults:\n"
            "  - {target: a, start: 10s, duration: 10s, delay: {fixed: 1ms}}\n"
            "  - {target: a, start: 15s, duration: 10s, abort: {httpStatus: 503}}\n"
            "  - {target: a, start: 40s, delay: {fixed: 1ms}}\n"
        )
    )
    assert windows == [
        Phase("baseline", 0.0, 10.0),
        Phase("fault", 10.0, 25.0),
        Phase("fault", 40.0, 60.0),
    ]
    assert phase_at(windows, 30.0) is None
