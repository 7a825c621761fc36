"""Release gating end to end: exit codes, JUnit, guard rails, steady state (real processes)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

# One service answering in about 2 ms, 20 requests a second.
TINY = """\
apiVersion: meshchaos/v1
kind: Experiment
metadata: {name: gate}
spec:
  duration: DURATION
  services:
    - {name: web, script: [{sleep: 2ms}]}
  mesh: {mtls: DISABLE}
  load: {target: web, rate: 20/s}
"""


def run(tmp_path: Path, duration: str, tail: str) -> tuple[int, str, Path]:
    experiment = tmp_path / "gate.yaml"
    experiment.write_text(TINY.replace("DURATION", duration) + tail)
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(experiment), "--out", str(out),
         "--quiet", "--junit", str(tmp_path / "junit.xml")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr, out


def test_a_failing_slo_exits_1_with_a_failing_junit_case(tmp_path: Path) -> None:
    code, output, out = run(
        tmp_path,
        "3s",
        "  slos:\n"
        "    - {name: holds, objective: 'p99 < 1s'}\n"
        "    - {name: impossible, objective: 'p99 < 1us'}\n",
    )
    assert code == 1, output
    assert "verdict: FAIL" in output
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert (suite.attrib["tests"], suite.attrib["failures"]) == ("2", "1")
    failure = suite.find("testcase[@name='impossible']/failure")
    assert failure is not None
    assert failure.attrib["message"].endswith(", objective p99 < 1us, scope all")
    assert suite.find("testcase[@name='holds']/failure") is None
    assert json.loads((out / "summary.json").read_text())["verdict"] == "fail"


def test_a_guard_rail_stops_the_run_early(tmp_path: Path) -> None:
    code, output, out = run(
        tmp_path,
        "20s",
        "  slos:\n    - {name: guard, objective: 'p99 < 1us', abortOnFail: true, delay: 1s}\n",
    )
    assert code == 1, output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["aborted"]["slo"]["name"] == "guard"
    assert 1 <= summary["aborted"]["at_s"] < 3
    assert summary["measured_s"] == summary["aborted"]["at_s"]
    assert "aborted at " in output
    assert (out / "latency.png").is_file()  # the full report is written


def test_no_fault_is_injected_when_the_steady_state_is_not_met(tmp_path: Path) -> None:
    code, output, out = run(
        tmp_path,
        "10s",
        "  faults:\n"
        "    - {name: slow, target: web, start: 2s, duration: 2s, delay: {fixed: 50ms}}\n"
        "  slos:\n"
        "    - {name: steady, objective: 'p99 < 1us', steadyState: true}\n"
        "    - {name: during, objective: 'p99 < 1s', where: {phase: fault}}\n",
    )
    assert code == 1, output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steady_state"]["met"] is False
    assert summary["measured_s"] == 2.0
    assert summary["faults"][0]["applied_at_s"] is None
    assert summary["slos"][1]["skipped"] is True
    assert "steady state not met at 2s ('steady' failed): no fault was injected" in output
