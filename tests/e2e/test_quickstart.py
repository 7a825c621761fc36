"""The quickstart, end to end: real processes on 127.0.0.1, a real report folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hdrh.log import HistogramLogReader

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"


def _meshchaos(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def _survivors(marker: Path) -> list[str]:
    """Return the command lines of live processes that mention ``marker`` (the run folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(marker) in cmdline:
            found.append(cmdline)
    return found


def test_quickstart_passes_and_shows_the_fault_only_in_its_phase(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = subprocess.run(
        _meshchaos("run", str(QUICKSTART), "--out", str(out), "--quiet"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verdict: PASS" in result.stdout
    assert _survivors(out) == []

    for name in ("summary.json", "latency.hlog", "junit.xml", "summary.md", "experiment.yaml",
                 "latency.png", "all.hgrm", "phase=baseline.hgrm", "phase=fault.hgrm",
                 "phase=recovery.hgrm"):  # fmt: skip
        assert (out / name).is_file(), name

    summary = json.loads((out / "summary.json").read_text())
    scopes = summary["scopes"]
    baseline = scopes["phase=baseline"]["latency_ms"]
    fault = scopes["phase=fault"]["latency_ms"]
    # Half of the backend's requests wait 100 ms more during the fault, and only then.
    assert baseline["p99"] < 100
    assert fault["p90"] > 100
    assert fault["p90"] > baseline["p90"] + 80
    assert scopes["all"]["errors"] == 0
    assert summary["verdict"] == "pass"
    [applied] = summary["faults"]
    assert 7.9 < applied["applied_at_s"] < 8.5
    assert 13.9 < applied["removed_at_s"] < 14.5
    # The experiment as run names its seed; the hlog reads back with HdrHistogram's reader.
    assert yaml.safe_load((out / "experiment.yaml").read_text())["spec"]["seed"] == 42
    reader = HistogramLogReader(str(out / "latency.hlog"), None)
    total = 0
    try:
        while (histogram := reader.get_next_interval_histogram()) is not None:
            total += histogram.get_total_count()
    finally:
        reader.close()
    assert total == sum(scopes[name]["requests"] for name in scopes)


def test_interrupt_writes_a_partial_report_and_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = subprocess.Popen(
        _meshchaos("run", str(QUICKSTART), "--out", str(out)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stderr is not None
    # Progress lines start once the topology is up and the load runs; interrupt mid-fault.
    for line in process.stderr:
        if " fault " in line:
            break
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=30)
    assert process.returncode == 130, stdout
    assert _survivors(out) == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert summary["verdict"] == "fail"
    assert 8 <= summary["measured_s"] < 20
    assert summary["scopes"]["phase=baseline"]["requests"] > 300
    [fault] = summary["faults"]
    assert fault["removed_at_s"] is not None  # reverted on the way out
