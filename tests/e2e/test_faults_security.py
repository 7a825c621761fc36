"""Certificate faults in real mode, each seen in the measured data within its own window only.

A frontend calls a backend of three replicas over STRICT mTLS, picked in turn
(``ROUND_ROBIN``, so a third of the calls meet replica 0), without retries. Replica 0 presents
an expired certificate, then one for another identity, then one from a foreign CA, each for
two seconds with a calm second between. The frontend's sidecar refuses each handshake, so the
calls that meet replica 0 fail (503 ``UF``) inside each window and only there.

A certificate fault swaps the certificate for new connections only: pooled connections keep
theirs, as after a rotation (``docs/faults.md``, ``docs/security.md``). With keep-alive the
frontend would go on using the connections it opened to replica 0 before the fault and never
handshake again, so the backend destination closes a connection after one request
(``maxRequestsPerConnection: 1``): every call handshakes and meets the certificate presented
at that moment.

Tolerances as in ``test_faults_process.py``: the machine is shared, so a calm second may show
an error; a window shows its effect in every second.
"""

from __future__ import annotations

from typing import Any

import pytest
from _experiments import Measured, run_experiment

pytestmark = pytest.mark.e2e

RATE = 24  # requests per second: each one-second interval holds this many
FOR_S = 2  # each fault lasts two seconds of measured time
# Each fault's name, kind, body and first second; a calm second follows each window.
FAULTS: list[tuple[str, str, dict[str, Any], int]] = [
    ("expired", "certExpired", {}, 2),
    ("impostor", "wrongIdentity", {"service": "frontend"}, 5),
    ("foreign-ca", "untrustedCa", {}, 8),
]
STARTS = [start for _, _, _, start in FAULTS]
WINDOWS = [range(start, start + FOR_S) for start in STARTS]
# The second before the first window and the second after each window.
CALM = [STARTS[0] - 1, *(start + FOR_S for start in STARTS)]


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Measured:
    """The three certificate faults on backend/0 in turn, with STRICT mTLS and no retries."""
    spec = {
        "seed": 7,
        "warmup": "1s",
        "duration": "11s",
        "services": [
            {"name": "frontend", "script": [{"call": "backend"}]},
            {"name": "backend", "replicas": 3, "script": [{"sleep": "1ms"}]},
        ],
        "mesh": {
            "mtls": "STRICT",
            "destinations": {
                "backend": {
                    "loadBalancer": {"simple": "ROUND_ROBIN"},
                    "retries": {"attempts": 0},
                    # Every call handshakes: a fault does not touch pooled connections.
                    "connectionPool": {"http": {"maxRequestsPerConnection": 1}},
                }
            },
        },
        "load": {"target": "frontend", "rate": f"{RATE}/s", "connections": 32},
        "faults": [
            {
                "name": name,
                "target": "backend/0",
                "start": f"{start}s",
                "duration": f"{FOR_S}s",
                kind: body,
            }
            for name, kind, body, start in FAULTS
        ],
    }
    return run_experiment(tmp_path_factory.mktemp("security-faults"), "security-faults", spec)


def test_certificate_faults_are_applied_and_removed_on_their_replica(measured: Measured) -> None:
    entries = measured.faults()
    assert list(entries) == [name for name, _, _, _ in FAULTS]
    for name, _, _, start in FAULTS:
        entry = entries[name]
        assert entry["target"] == "backend/0"
        assert start <= entry["applied_at_s"] < start + 0.5, entry
        assert start + FOR_S <= entry["removed_at_s"] < start + FOR_S + 0.5, entry
    assert all(measured.errors.get(s, 0) == 0 for s in range(STARTS[0])), measured.errors


def test_a_bad_certificate_fails_its_replicas_share_of_calls(measured: Measured) -> None:
    for window in WINDOWS:  # a third of the calls, give or take the CPU's noise
        for second in window:
            assert RATE // 6 <= measured.errors.get(second, 0) <= RATE // 2, (
                second,
                measured.errors,
            )
    for second in CALM:  # a call may still meet the bad certificate just after the removal
        assert measured.errors.get(second, 0) <= 2, (second, measured.errors)
