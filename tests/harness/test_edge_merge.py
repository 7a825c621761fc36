"""Merging the sidecars' edge measurements into the run's scopes, and SLOs on them."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from harness.edges import merge_edges
from harness.experiment import SloSpec
from harness.gating import Measurements, check
from harness.phases import Phase
from harness.recorder import Recorder
from harness.session import prepare, run_experiment
from harness.simulate import run_simulated
from meshcore.edges import EdgeRecorder

PHASES = [Phase("baseline", 0.0, 2.0), Phase("fault", 2.0, 4.0), Phase("recovery", 4.0, 6.0)]
ORIGIN = 1000.0  # each sidecar's trio clock at the reset


def sidecar(source: str, requests: list[tuple[float, float, int, int]]) -> dict[str, Any]:
    """A sidecar's GET /stats/edges document, through JSON as on the wire.

    ``requests``: (start seconds after the reset, latency, status, attempts) to ``payments``.
    """
    edges = EdgeRecorder()
    edges.reset(ORIGIN)
    for at_s, latency_s, status, attempts in requests:
        edges.request(
            source,
            "payments",
            started=ORIGIN + at_s,
            duration_s=latency_s,
            status=status,
            attempts=attempts,
        )
    edges.ejection(source, "payments", ORIGIN + 2.5)
    document: dict[str, Any] = json.loads(json.dumps({"workload": source, **edges.document()}))
    return document


def merged(*documents: dict[str, Any], measured_s: float = 6.0, **kwargs: Any) -> Recorder:
    recorder = Recorder()
    merge_edges(recorder, documents, PHASES, measured_s=measured_s, **kwargs)
    return recorder


CHECKOUT = [(0.5, 0.010, 200, 1), (2.5, 0.300, 503, 3), (2.7, 0.200, 200, 2), (4.5, 0.020, 200, 1)]
CART = [(1.5, 0.040, 200, 1), (3.0, 0.100, 200, 1)]


def test_edge_and_service_scopes_with_phases() -> None:
    recorder = merged(sidecar("checkout", CHECKOUT), sidecar("cart", CART))
    assert recorder.scope_names() == sorted(
        [
            *(f"{p}edge={e}->payments" for p in ("", "phase=baseline,", "phase=fault,")
              for e in ("checkout", "cart")),
            "phase=recovery,edge=checkout->payments",
            *(f"{p}service=payments"
              for p in ("", "phase=baseline,", "phase=fault,", "phase=recovery,")),
        ]
    )  # fmt: skip
    fault = recorder.scope("phase=fault,edge=checkout->payments", 2.0)
    assert (fault.requests, fault.errors) == (2, 1)
    assert fault.counters == {"attempts": 5, "ejections": 1}
    service = recorder.scope("service=payments", 6.0)
    assert (service.requests, service.errors) == (6, 1)
    assert service.counters == {"attempts": 9, "ejections": 2}


def test_merged_latencies_are_exact() -> None:
    recorder = merged(sidecar("checkout", CHECKOUT), sidecar("cart", CART))
    reference = Recorder()
    for at_s, latency_s, status, _ in [*CHECKOUT, *CART]:
        reference.record(("x",), at_s, latency_s, error=status >= 500)
    ours, theirs = recorder.scope("service=payments", 6.0), reference.scope("x", 6.0)
    for percentile in (10.0, 50.0, 90.0, 99.0):
        assert ours.percentile_ms(percentile) == theirs.percentile_ms(percentile)
    assert [(i.index, i.requests) for i in recorder.intervals("service=payments")] == [
        (i.index, i.requests) for i in reference.intervals("x")
    ]


def test_status_scopes_only_when_wanted_and_not_past_the_measured_time() -> None:
    recorder = merged(
        sidecar("checkout", CHECKOUT),
        measured_s=4.0,
        wanted={"phase=fault,edge=checkout->payments,status=5xx"},
    )
    assert "phase=recovery,edge=checkout->payments" not in recorder.scope_names()
    five = recorder.scope("phase=fault,edge=checkout->payments,status=5xx", 2.0)
    assert (five.requests, five.counters) == (1, {"attempts": 3})
    assert "edge=checkout->payments,status=2xx" not in recorder.scope_names()


def test_a_sidecar_never_reset_is_left_out() -> None:
    document = sidecar("checkout", CHECKOUT)
    document["reset"] = False
    assert merged(document).scope_names() == []


@pytest.mark.parametrize(
    ("objective", "where", "observed", "passed"),
    [
        ("retry_amplification <= 2", {"edge": "checkout->payments", "phase": "fault"}, 2.5, False),
        ("retry_amplification <= 2", {"edge": "checkout->payments", "phase": "baseline"}, 1, True),
        ("retry_amplification < 1.5", {"service": "payments"}, 1.5, False),
        ("ejections == 1", {"edge": "cart->payments", "phase": "fault"}, 1, True),
        ("ejections == 0", {"service": "payments", "phase": "fault"}, 2, False),
        ("p99 < 250ms", {"edge": "checkout->payments", "phase": "fault"}, 300.031, False),
    ],
)
def test_slos_on_edges_and_services(
    objective: str, where: dict[str, str], observed: float, passed: bool
) -> None:
    recorder = merged(sidecar("checkout", CHECKOUT), sidecar("cart", CART))
    measurements = Measurements(recorder, PHASES, 6.0, dropped=0)
    result = check(SloSpec("s", objective, where), measurements, "frontend")
    assert result.observed == pytest.approx(observed)
    assert (result.passed, result.reason) == (passed, "")


def test_retry_amplification_of_the_load_target_is_not_an_edge() -> None:
    recorder = merged(sidecar("checkout", CHECKOUT))
    recorder.record(("all",), 0.5, 0.010, error=False)  # the load generator's request
    measurements = Measurements(recorder, PHASES, 6.0, dropped=0)
    result = check(SloSpec("s", "retry_amplification < 2", {}), measurements, "frontend")
    assert (result.observed, result.reason) == (None, "no edge measurement in scope")


def test_a_simulated_run_measures_its_edges_exactly(tmp_path: Path) -> None:
    document = {
        "apiVersion": "meshchaos/v1",
        "kind": "Experiment",
        "metadata": {"name": "edges"},
        "spec": {
            "seed": 3,
            "mode": "simulate",
            "warmup": "1s",
            "duration": "4s",
            "services": [
                {"name": "frontend", "script": [{"sleep": "2ms"}, {"call": "backend"}]},
                {"name": "backend", "script": [{"sleep": "10ms"}]},
            ],
            "mesh": {"mtls": "DISABLE"},
            "load": {"target": "frontend", "rate": "50/s", "connections": 8},
            "slos": [
                {
                    "objective": "retry_amplification == 1",
                    "where": {"edge": "frontend->backend"},
                }
            ],
        },
    }
    experiment = prepare(document)
    result = run_simulated(partial(run_experiment, experiment, tmp_path), seed=experiment.seed)
    scopes = result.summary["scopes"]
    # Each of the 200 load requests calls the backend once, 2 ms after its intended start: the
    # warmup's calls are not counted, and the backend's 10 ms are exact in virtual time.
    for name in ("edge=frontend->backend", "service=backend"):
        assert (scopes[name]["requests"], scopes[name]["counters"]) == (200, {"attempts": 200})
        assert scopes[name]["latency_ms"]["max"] == pytest.approx(10.0, rel=1e-3)
    assert [(s["observed"], s["passed"]) for s in result.summary["slos"]] == [(1.0, True)]
