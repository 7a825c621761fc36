"""``meshchaos calibrate`` and ``--network-latency``: a hop's cost measured, then simulated."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import yaml

from harness.calibrate import calibration_experiment, hop_latency
from harness.session import prepare, run_experiment
from harness.simulate import run_simulated

ROOT = Path(__file__).resolve().parents[2]
HDR = 1e-3  # HDR histograms keep 3 significant digits


def test_calibration_recovers_a_known_hop_latency_in_simulation(tmp_path: Path) -> None:
    # In simulate mode every hop between pods costs exactly spec.network.latency, so the
    # calibration's arithmetic must give that latency back.
    experiment = prepare(calibration_experiment(3.0), mode="simulate", network_latency="1.5ms")
    result = run_simulated(partial(run_experiment, experiment, tmp_path), seed=experiment.seed)
    assert result.passed
    assert result.summary["scopes"]["all"]["latency_ms"]["p50"] == pytest.approx(13.0, rel=HDR)
    assert hop_latency(result.summary) == pytest.approx(1.5, abs=13.0 * HDR)


def test_calibration_runs_with_the_mtls_mode_asked_for() -> None:
    assert calibration_experiment(2.0).mesh.mtls == "PERMISSIVE"  # the mesh's default
    assert calibration_experiment(2.0, "STRICT").mesh.mtls == "STRICT"


def _experiment_file(folder: Path) -> Path:
    path = folder / "two-tiers.yaml"
    document = {
        "apiVersion": "meshchaos/v1",
        "kind": "Experiment",
        "metadata": {"name": "two-tiers"},
        "spec": {
            "mode": "simulate",
            "duration": "2s",
            "services": [
                {"name": "frontend", "script": [{"call": "backend"}]},
                {"name": "backend", "script": [{"sleep": "5ms"}]},
            ],
            "load": {"target": "frontend", "rate": "20/s"},
        },
    }
    path.write_text(yaml.safe_dump(document))
    return path


def _meshchaos(*arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "harness.cli", *arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_run_takes_the_network_latency_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = _meshchaos(
        "run", str(_experiment_file(tmp_path)), "--network-latency", "2ms", "--out", str(out),
        "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    # 5 ms of sleep and four one-way hops of 2 ms between pods.
    assert summary["scopes"]["all"]["latency_ms"]["p50"] == pytest.approx(13.0, rel=HDR)
    written = yaml.safe_load((out / "experiment.yaml").read_text())
    assert written["spec"]["network"]["latency"] == "2ms"


def test_a_bad_network_latency_exits_2_naming_the_flag(tmp_path: Path) -> None:
    done = _meshchaos("run", str(_experiment_file(tmp_path)), "--network-latency", "-1ms")
    assert done.returncode == 2
    assert "--network-latency" in done.stderr
