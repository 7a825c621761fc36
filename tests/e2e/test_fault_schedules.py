"""Fault schedules in real mode, each seen in the measured data: recurring windows, a ramp on a
share of replicas. No retries, so every injected abort is an error at the load generator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.e2e

RATE = 40  # requests per second: the per-second error counts below are out of this many


def _run(tmp_path: Path, duration: str, faults: list[dict[str, Any]]) -> dict[str, Any]:
    document = {
        "apiVersion": "meshchaos/v1",
        "kind": "Experiment",
        "metadata": {"name": "schedules"},
        "spec": {
            "seed": 3,
            "warmup": "1s",
            "duration": duration,
            "services": [
                {"name": "frontend", "script": [{"call": "backend"}]},
                {"name": "backend", "replicas": 2, "script": [{"sleep": "1ms"}]},
            ],
            "mesh": {
                "mtls": "DISABLE",
                "destinations": {
                    "backend": {
                        "retries": {"attempts": 0},
                        "loadBalancer": {"simple": "ROUND_ROBIN"},
                    }
                },
            },
            "load": {"target": "frontend", "rate": f"{RATE}/s", "connections": 16},
            "faults": faults,
        },
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(document))
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(path), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


def test_a_recurring_abort_fails_requests_only_in_its_windows(tmp_path: Path) -> None:
    fault = {"name": "flap", "target": "backend", "start": "1s", "duration": "5s",
             "every": "3s", "for": "1s", "abort": {"httpStatus": 503}}  # fmt: skip
    summary = _run(tmp_path, "6s", [fault])
    windows = [(f["window"], f["applied_at_s"], f["removed_at_s"]) for f in summary["faults"]]
    assert [w[0] for w in windows] == [0, 1]
    assert [round(w[1]) for w in windows] == [1, 4]
    assert [round(w[2]) for w in windows] == [2, 5]
    assert [(p["name"], p["start_s"], p["end_s"]) for p in summary["phases"]][1:] == [
        ("baseline", 0.0, 1.0),
        ("fault", 1.0, 2.0),
        ("fault", 4.0, 5.0),
        ("recovery", 5.0, 6.0),
    ]
    errors = dict(summary["intervals"]["errors"]["all"])
    for second in (1, 4):  # inside a window: (nearly) every request fails
        assert errors.get(second, 0) >= RATE * 0.8, errors
    for second in (0, 2, 3, 5):  # outside: at most a request racing the fault's removal
        assert errors.get(second, 0) <= 2, errors


def test_a_ramp_on_half_the_replicas_raises_errors_step_by_step(tmp_path: Path) -> None:
    fault = {"name": "ramp", "target": "backend", "replicas": "50%", "start": "1s",
             "duration": "6s", "ramp": "4s", "abort": {"httpStatus": 503}}  # fmt: skip
    summary = _run(tmp_path, "7s", [fault])
    (entry,) = summary["faults"]
    assert len(entry["replicas"]) == 1  # half of two
    errors = dict(summary["intervals"]["errors"]["all"])
    # Half the requests reach the faulty replica; its abort share steps 12.5, 37.5, 62.5, 87.5
    # then 100%: about 2.5, 7.5, 12.5, 17.5 and 20 errors a second out of 40.
    assert errors.get(0, 0) == 0
    assert errors.get(1, 0) < errors.get(3, 0) < errors.get(5, 0)
    assert RATE * 0.3 <= errors.get(5, 0) <= RATE * 0.7
