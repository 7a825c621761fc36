"""Network faults in real mode, each seen in the measured data within its own window only.

One experiment, run once for the module: a frontend calls one backend replica (4 KiB answers,
no retries, so every failed call is an error at the load generator), and eight faults follow
each other in 2 s windows with 1 s of calm between them: partitions (on the service and on the
edge) and Toxiproxy's toxics. Each test reads its window's one-second intervals (errors from
``summary.json``, latencies from ``latency.hlog``) and the calm seconds around it.

Tolerances: the machine is shared, and a replica starved of CPU for half a second can hold
requests due before a window until the next fault meets them, so a calm second may show a few
errors or slow requests; a window shows (nearly) all of them.
"""

from __future__ import annotations

from typing import Any

import pytest
from _experiments import Measured, run_experiment

pytestmark = pytest.mark.e2e

RATE = 20  # requests per second: each one-second interval holds this many
BODY = 4096  # bytes of each backend answer (responseSize: 4KiB)

# name: (target, fault body); window k runs from 2 + 3k s to 4 + 3k s of measured time.
FAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "partition-service": ("backend", {"partition": {}}),
    "partition-edge": ("frontend->backend", {"partition": {}}),
    "latency": ("backend", {"toxic": {"type": "latency", "latency": "200ms", "jitter": "50ms"}}),
    "timeout": ("backend", {"toxic": {"type": "timeout", "timeout": "300ms"}}),
    "reset-peer": ("backend", {"toxic": {"type": "reset_peer"}}),
    "bandwidth": ("frontend->backend", {"toxic": {"type": "bandwidth", "rate": "20KB/s"}}),
    "limit-data": ("backend", {"toxic": {"type": "limit_data", "bytes": "1KB"}}),
    "slicer": ("backend", {"toxic": {"type": "slicer", "averageSize": "512B", "delay": "30ms"}}),
}
WINDOW_S, PERIOD_S, FIRST_S = 2, 3, 2
DURATION_S = FIRST_S + PERIOD_S * len(FAULTS)


def _start(name: str) -> int:
    return FIRST_S + PERIOD_S * list(FAULTS).index(name)


def _fault(name: str) -> dict[str, Any]:
    target, body = FAULTS[name]
    start, duration = f"{_start(name)}s", f"{WINDOW_S}s"
    return {"name": name, "target": target, "start": start, "duration": duration, **body}


def _inside(name: str) -> list[int]:
    """Return the seconds of ``name``'s window."""
    return list(range(_start(name), _start(name) + WINDOW_S))


def _around(name: str) -> list[int]:
    """Return the calm seconds just before and just after ``name``'s window."""
    return [_start(name) - 1, _start(name) + WINDOW_S]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Measured:
    spec = {
        "seed": 4,
        "warmup": "1s",
        "duration": f"{DURATION_S}s",
        "services": [
            {"name": "frontend", "script": [{"call": "backend"}]},
            {"name": "backend", "script": [{"sleep": "1ms"}], "responseSize": f"{BODY}B"},
        ],
        "mesh": {"mtls": "DISABLE", "destinations": {"backend": {"retries": {"attempts": 0}}}},
        "load": {"target": "frontend", "rate": f"{RATE}/s", "connections": 32},
        "faults": [_fault(name) for name in FAULTS],
    }
    return run_experiment(tmp_path_factory.mktemp("network-faults"), "network-faults", spec)


def _assert_errors_only_inside(run: Measured, name: str) -> None:
    for second in _inside(name):
        assert run.errors.get(second, 0) >= RATE * 0.8, (name, second, run.errors)
    for second in _around(name):
        assert run.errors.get(second, 0) <= RATE // 4, (name, second, run.errors)


def _assert_slow_only_inside(run: Measured, name: str, at_least_ms: float) -> None:
    for second in _inside(name):
        interval = run.intervals[second]
        assert interval.percentile_ms(10) >= at_least_ms, (name, second, interval)
        assert run.errors.get(second, 0) == 0, (name, second, run.errors)
    for second in _around(name):
        assert run.intervals[second].percentile_ms(50) < 100, (name, second)


def test_every_fault_is_applied_and_removed_on_schedule(run: Measured) -> None:
    entries = {entry["name"]: entry for entry in run.summary["faults"]}
    assert list(entries) == list(FAULTS)
    for name, (target, _) in FAULTS.items():
        entry = entries[name]
        assert entry["target"] == target
        assert _start(name) <= entry["applied_at_s"] < _start(name) + 0.5, entry
        assert _start(name) + WINDOW_S <= entry["removed_at_s"] < _start(name) + WINDOW_S + 0.5
    # Before the first fault, nothing fails.
    assert all(run.errors.get(second, 0) == 0 for second in range(FIRST_S)), run.errors


def test_a_partitioned_service_fails_every_call(run: Measured) -> None:
    _assert_errors_only_inside(run, "partition-service")


def test_a_partitioned_edge_fails_every_call(run: Measured) -> None:
    _assert_errors_only_inside(run, "partition-edge")
    edge = run.summary["scopes"]["edge=frontend->backend"]
    assert edge["errors"] >= sum(run.errors.get(s, 0) for s in _inside("partition-edge"))


def test_latency_with_jitter_delays_every_answer_by_150_to_250ms(run: Measured) -> None:
    _assert_slow_only_inside(run, "latency", at_least_ms=145)
    for second in _inside("latency"):
        interval = run.intervals[second]
        # Uniform within 200 ms ± 50 ms: the middle 80 % of the answers spread over ~80 ms.
        assert interval.percentile_ms(90) - interval.percentile_ms(10) >= 40, interval


def test_timeout_holds_the_answers_then_closes_the_connection(run: Measured) -> None:
    inside = _inside("timeout")
    # Requests in the last 300 ms of the window are held, then flow when the toxic goes.
    assert sum(run.errors.get(second, 0) for second in inside) >= RATE * WINDOW_S * 0.7
    for second in inside:
        assert run.intervals[second].percentile_ms(50) >= 250, (second, run.intervals[second])
    for second in _around("timeout"):
        assert run.errors.get(second, 0) <= RATE // 4, (second, run.errors)


def test_reset_peer_fails_every_call_at_once(run: Measured) -> None:
    _assert_errors_only_inside(run, "reset-peer")
    for second in _inside("reset-peer"):  # a reset, not a wait: unlike the timeout toxic
        assert run.intervals[second].percentile_ms(50) < 100, run.intervals[second]


def test_bandwidth_makes_every_answer_take_its_size_over_the_rate(run: Measured) -> None:
    # 4 KiB at 20 KB/s: at least 205 ms per answer.
    _assert_slow_only_inside(run, "bandwidth", at_least_ms=BODY / 20_000 * 1000 - 10)


def test_limit_data_cuts_every_answer_longer_than_the_limit(run: Measured) -> None:
    _assert_errors_only_inside(run, "limit-data")


def test_slicer_delivers_each_answer_in_delayed_pieces(run: Measured) -> None:
    # At least 4096 / 512 = 8 pieces, 30 ms apart.
    _assert_slow_only_inside(run, "slicer", at_least_ms=(BODY // 512 - 1) * 30)
