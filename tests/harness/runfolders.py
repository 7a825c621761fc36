"""Synthetic report folders for the report and compare tests, built as a run builds them.

A seeded open-loop schedule at ``rate_rps`` is recorded into a :class:`Recorder` with the scopes a
run records, then ``build_summary`` and ``write_report`` (or only the two stored files that
``meshchaos report`` and ``compare`` read) write the folder. No process, no clock.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path
from typing import Any

from harness.chaos import AppliedFault
from harness.experiment import Experiment, parse_experiment
from harness.hdrlog import write_hlog
from harness.phases import phase_at, phase_windows
from harness.report import write_experiment_yaml, write_report
from harness.runner import RunState
from harness.summary import build_summary

EXPERIMENT = """\
apiVersion: meshchaos/v1
kind: Experiment
metadata:
  name: checkout-brownout
  description: Checkout keeps its p99 while payments slows down and fails now and then.
spec:
  seed: 7
  warmup: 1s
  duration: 30s
  services:
    - name: frontend
      replicas: 2
      script: [{call: checkout}]
    - name: checkout
      replicas: 3
      script: [{call: payments}, {call: inventory}]
    - name: payments
      replicas: 2
      script: [{sleep: 5ms}]
    - name: inventory
      script: [{sleep: 1ms}]
  load: {target: frontend, rate: 100/s}
  faults:
    - {name: payments-slow, target: payments, start: 10s, duration: 10s, delay: {fixed: 50ms}}
    - {name: payments-1-fails, target: payments/1, start: 14s, duration: 3s,
       abort: {httpStatus: 503, percent: 100}}
  slos:
    - {name: fault p99, objective: "p99 < 40ms", where: {phase: fault}}
    - {name: errors, objective: "error_rate < 1%"}
"""
EDGE = "edge=checkout->payments"
START_EPOCH_S = 1_800_000_000.0


def experiment() -> Experiment:
    return parse_experiment(EXPERIMENT, "checkout-brownout.yaml")


def synthetic_run(
    folder: Path,
    *,
    seed: int,
    slowdown: float = 1.0,
    fault_error_share: float = 0.05,
    rate_rps: int = 100,
    render: bool = True,
    edge: bool = True,
    duration_s: float | None = None,
) -> dict[str, Any]:
    """Write a report folder of one synthetic run; return its summary.

    Latencies are lognormal around 10 ms times ``slowdown``, plus 50 ms during the delay fault;
    during the abort fault ``fault_error_share`` of the requests fail. With ``render`` False only
    ``summary.json``, ``latency.hlog`` and ``experiment.yaml`` are written (what compare reads).
    """
    spec = experiment()
    if duration_s is not None:
        spec = dataclasses.replace(spec, duration_s=duration_s)
    rng = random.Random(seed)
    state = RunState(phases=phase_windows(spec), measured_s=spec.duration_s)
    state.faults = [AppliedFault(fault, fault.start_s, fault.start_s + (fault.duration_s or 0.0))
                    for fault in spec.faults]  # fmt: skip
    for number in range(int(spec.duration_s * rate_rps)):
        at_s = number / rate_rps
        phase = phase_at(state.phases, at_s)
        latency_s = 0.010 * slowdown * math.exp(rng.gauss(0.0, 0.4))
        if 10.0 <= at_s < 20.0:
            latency_s += 0.050
        error = 14.0 <= at_s < 17.0 and rng.random() < fault_error_share
        scopes = ["all"] if phase is None else ["all", f"phase={phase}"]
        if edge:
            scopes.append(EDGE)
        state.latency.record(scopes, at_s, latency_s, error=error)
        state.uncorrected.record(["all"], at_s, latency_s, error=error)
        state.lag.record(["all"], at_s, 0.0005, error=False)
    summary = build_summary(
        spec,
        state,
        mode="simulate",
        started_at="2027-01-15T08:00:00+00:00",
        finished_at="2027-01-15T08:00:31+00:00",
        versions={"python": "3.11.7", "meshchaos": "0.1.0"},
    )
    folder.mkdir(parents=True, exist_ok=True)
    write_experiment_yaml(folder / "experiment.yaml", spec.document)
    if render:
        write_report(folder, summary, state.latency, start_epoch_s=START_EPOCH_S)
    else:
        (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        write_hlog(folder / "latency.hlog", state.latency, start_epoch_s=START_EPOCH_S)
    return summary
