"""Run one experiment in real mode through the CLI and read what it measured.

Shared by the e2e tests that check a fault's effect in the measured data: errors per
one-second interval from ``summary.json`` and latencies per interval from ``latency.hlog``,
both indexed by the second of measured time the requests were due in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.hdrlog import read_hlog
from harness.recorder import Interval

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Measured:
    """What a test reads of a run: the summary, errors and latencies per second."""

    summary: dict[str, Any]
    errors: dict[int, int]
    intervals: dict[int, Interval]

    def faults(self) -> dict[str, dict[str, Any]]:
        """Return the summary's fault entries by name."""
        return {entry["name"]: entry for entry in self.summary["faults"]}


def run_experiment(folder: Path, name: str, spec: dict[str, Any]) -> Measured:
    """Run the experiment ``name`` with ``spec`` through ``harness.cli run`` in ``folder``."""
    document = {
        "apiVersion": "meshchaos/v1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": spec,
    }
    path = folder / "exp.json"  # JSON is YAML
    path.write_text(json.dumps(document))
    out = folder / "run"
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(path), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "summary.json").read_text())
    intervals = {interval.index: interval for interval in read_hlog(out / "latency.hlog")["all"]}
    return Measured(summary, dict(summary["intervals"]["errors"]["all"]), intervals)
