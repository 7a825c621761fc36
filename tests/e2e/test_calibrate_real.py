"""``meshchaos calibrate`` on real processes: the figure it prints is the one its report implies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.calibrate import hop_jitter, hop_latency

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_calibrate_runs_real_mode_and_prints_the_latency_per_hop(tmp_path: Path) -> None:
    out = tmp_path / "calibration"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "calibrate", "--duration", "2s", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "real"
    assert summary["verdict"] == "pass"
    assert summary["scopes"]["all"]["requests"] == 100  # 2 s at 50/s, after the warm-up
    printed = re.search(
        r"--network-latency (\d+\.\d\d)ms --network-jitter (\d+\.\d\d)ms", done.stdout
    )
    assert printed is not None, done.stdout
    latency_ms = summary["scopes"]["all"]["latency_ms"]
    assert float(printed.group(1)) == pytest.approx(hop_latency(latency_ms), abs=0.005)
    assert float(printed.group(2)) == pytest.approx(hop_jitter(latency_ms), abs=0.005)
