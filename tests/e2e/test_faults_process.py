"""Process faults in real mode, each seen in the measured data within its own window only.

A frontend calls a backend of three replicas, picked in turn (``ROUND_ROBIN``, so a third of
the calls meet a faulty replica). Without retries, ``kill`` of replica 0 fails the calls that
meet it while it is down, and ``pause`` of replica 1 holds them until it resumes (no timeout
applies, so they are slow, not failed). With retries on connection failures and outlier
detection, the same kill is hidden from the users. Each test reads its window's one-second
intervals (errors from ``summary.json``, latencies from ``latency.hlog``, by the second a
request was due in) and the calm seconds around it.

Tolerances as in ``test_faults_network.py``: the machine is shared, so a calm second may show
an error or a slow request; a window shows its effect in every second.
"""

from __future__ import annotations

from typing import Any

import pytest
from _experiments import Measured, run_experiment

pytestmark = pytest.mark.e2e

RATE = 24  # requests per second: each one-second interval holds this many
KILL_S, KILL_FOR_S = 2, 3  # backend/0 is down for seconds 2, 3 and 4 of measured time
PAUSE_S, PAUSE_FOR_S = 7, 2  # backend/1 is stopped for seconds 7 and 8


def _spec(*, duration_s: int, backend: dict[str, Any], faults: list[dict[str, Any]]) -> Any:
    return {
        "seed": 6,
        "warmup": "1s",
        "duration": f"{duration_s}s",
        "services": [
            {"name": "frontend", "script": [{"call": "backend"}]},
            {"name": "backend", "replicas": 3, "script": [{"sleep": "1ms"}]},
        ],
        "mesh": {
            "mtls": "DISABLE",
            "destinations": {"backend": {"loadBalancer": {"simple": "ROUND_ROBIN"}, **backend}},
        },
        "load": {"target": "frontend", "rate": f"{RATE}/s", "connections": 32},
        "faults": faults,
    }


KILL: dict[str, Any] = {
    "name": "kill",
    "target": "backend/0",
    "start": f"{KILL_S}s",
    "duration": f"{KILL_FOR_S}s",
    "kill": {},
}
PAUSE: dict[str, Any] = {
    "name": "pause",
    "target": "backend/1",
    "start": f"{PAUSE_S}s",
    "duration": f"{PAUSE_FOR_S}s",
    "pause": {},
}
KILL_WINDOW = range(KILL_S, KILL_S + KILL_FOR_S)
PAUSE_WINDOW = range(PAUSE_S, PAUSE_S + PAUSE_FOR_S)
# The seconds just before and just after each window.
CALM = [KILL_S - 1, KILL_S + KILL_FOR_S, PAUSE_S - 1, PAUSE_S + PAUSE_FOR_S]


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Measured:
    """Kill, then pause, with retries disabled."""
    spec = _spec(duration_s=11, backend={"retries": {"attempts": 0}}, faults=[KILL, PAUSE])
    return run_experiment(tmp_path_factory.mktemp("process-faults"), "process-faults", spec)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Measured:
    """The same kill, with retries on connection failures and resets and outlier detection.

    Istio's default ``retryOn`` has no ``reset``: a call already on a connection to the
    replica when it is killed would fail (one error per run in trials).
    """
    backend = {
        "retries": {"attempts": 2, "retryOn": "connect-failure,reset"},
        "outlierDetection": {},
    }
    spec = _spec(duration_s=7, backend=backend, faults=[KILL])
    return run_experiment(tmp_path_factory.mktemp("guarded-kill"), "guarded-kill", spec)


def test_kill_and_pause_are_applied_and_removed_on_their_replicas(bare: Measured) -> None:
    entries = bare.faults()
    assert list(entries) == ["kill", "pause"]
    for fault, start, duration in ((KILL, KILL_S, KILL_FOR_S), (PAUSE, PAUSE_S, PAUSE_FOR_S)):
        entry = entries[fault["name"]]
        assert entry["target"] == fault["target"]
        assert start <= entry["applied_at_s"] < start + 0.5, entry
        assert start + duration <= entry["removed_at_s"] < start + duration + 0.5, entry
    assert all(bare.errors.get(second, 0) == 0 for second in range(KILL_S)), bare.errors


def test_a_killed_replica_fails_its_share_of_calls_without_retries(bare: Measured) -> None:
    for second in KILL_WINDOW:  # a third of the calls, give or take the CPU's noise
        assert RATE // 6 <= bare.errors.get(second, 0) <= RATE // 2, (second, bare.errors)
    for second in CALM:  # a call may still meet the restarted replica before it listens
        assert bare.errors.get(second, 0) <= 2, (second, bare.errors)


def test_a_paused_replica_holds_its_calls_until_it_resumes(bare: Measured) -> None:
    for second in PAUSE_WINDOW:
        interval = bare.intervals[second]
        # The first calls due at `second` that meet the stopped replica wait until the resume,
        # (PAUSE_S + PAUSE_FOR_S - second) s later, less up to 0.5 s of late application.
        resume_in_ms = (PAUSE_S + PAUSE_FOR_S - second) * 1000
        assert resume_in_ms - 500 <= interval.percentile_ms(99), (second, interval)
        assert interval.percentile_ms(99) <= (PAUSE_FOR_S + 0.5) * 1000, (second, interval)
        assert interval.percentile_ms(50) < 100, (second, interval)  # the others do not wait
        assert bare.errors.get(second, 0) == 0, (second, bare.errors)
    for second in CALM:
        assert bare.intervals[second].percentile_ms(99) < 300, (second, bare.intervals[second])


def test_retries_and_outlier_detection_hide_a_killed_replica(guarded: Measured) -> None:
    entry = guarded.faults()["kill"]
    assert entry["target"] == "backend/0"
    assert KILL_S <= entry["applied_at_s"] < KILL_S + 0.5, entry
    assert sum(guarded.errors.values()) <= 1, guarded.errors
    # The kill was there all the same: calls were retried and the replica was ejected.
    counters = guarded.summary["scopes"]["phase=fault,edge=frontend->backend"]["counters"]
    requests = guarded.summary["scopes"]["phase=fault,edge=frontend->backend"]["requests"]
    assert counters["attempts"] > requests, counters
    assert counters["ejections"] >= 1, counters
