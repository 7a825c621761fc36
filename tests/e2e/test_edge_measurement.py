"""Edge measurement end to end: the sidecars' histograms and retry counts reach the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

# Two backend replicas; one answers 503 during the fault, and the frontend's sidecar retries.
EXPERIMENT = """\
apiVersion: meshchaos/v1
kind: Experiment
metadata: {name: edges}
spec:
  seed: 3
  warmup: 1s
  duration: 6s
  services:
    - {name: frontend, script: [{call: backend}]}
    - {name: backend, replicas: 2, script: [{sleep: 2ms}]}
  mesh:
    mtls: DISABLE
    destinations:
      backend: {retries: {attempts: 2, retryOn: 5xx}}
  load: {target: frontend, rate: 20/s}
  faults:
    - {name: broken, target: backend/1, start: 2s, duration: 3s, abort: {httpStatus: 503}}
  slos:
    - name: no retries before the fault
      objective: retry_amplification == 1
      where: {edge: frontend->backend, phase: baseline}
    - name: retries during the fault
      objective: retry_amplification > 1.2
      where: {edge: frontend->backend, phase: fault}
    - {name: nobody ejects, objective: ejections == 0, where: {service: backend}}
    - {name: retries hide the fault, objective: error_rate == 0, where: {phase: fault}}
"""


def test_retry_amplification_per_edge_is_measured_and_gated(tmp_path: Path) -> None:
    experiment = tmp_path / "edges.yaml"
    experiment.write_text(EXPERIMENT)
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(experiment), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    summary = json.loads((out / "summary.json").read_text())
    assert result.returncode == 0, result.stdout + result.stderr + json.dumps(summary["slos"])
    scopes = summary["scopes"]
    edge = scopes["edge=frontend->backend"]
    # Every load request makes one call on the edge (a request at the very end may still be
    # on its way at the cut).
    assert abs(edge["requests"] - scopes["all"]["requests"]) <= 2
    assert edge["errors"] == 0
    fault = scopes["phase=fault,edge=frontend->backend"]["counters"]
    assert fault["attempts"] > scopes["phase=fault,edge=frontend->backend"]["requests"]
    assert scopes["service=backend"]["requests"] == edge["requests"]
    assert {slo["name"]: slo["passed"] for slo in summary["slos"]} == {
        "no retries before the fault": True,
        "retries during the fault": True,
        "nobody ejects": True,
        "retries hide the fault": True,
    }
