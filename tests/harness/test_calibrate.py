"""``meshchaos calibrate`` and ``--network-latency``: a hop's cost measured, then simulated."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.calibrate import (
    calibration_experiment,
    hop_jitter,
    hop_latency,
    uniform_sum_spread,
)
from harness.session import prepare, run_experiment
from harness.simulate import run_simulated

ROOT = Path(__file__).resolve().parents[2]
HDR = 1e-3  # HDR histograms keep 3 significant digits


def _all(summary: dict[str, Any]) -> dict[str, float]:
    """Return the latency percentiles of a summary's ``all`` scope, in ms."""
    latency: dict[str, float] = summary["scopes"]["all"]["latency_ms"]
    return latency


def test_calibration_recovers_a_known_hop_latency_in_simulation(tmp_path: Path) -> None:
    # In simulate mode every hop between pods costs exactly spec.network.latency, so the
    # calibration's arithmetic must give that latency back.
    experiment = prepare(calibration_experiment(3.0), mode="simulate", network_latency="1.5ms")
    result = run_simulated(partial(run_experiment, experiment, tmp_path), seed=experiment.seed)
    assert result.passed
    assert result.summary["scopes"]["all"]["latency_ms"]["p50"] == pytest.approx(13.0, rel=HDR)
    assert hop_latency(_all(result.summary)) == pytest.approx(1.5, abs=13.0 * HDR)


def test_calibration_recovers_a_known_hop_jitter_in_simulation(tmp_path: Path) -> None:
    # Each of the four hops varies by up to 1 ms either way: the run's spread above its median
    # at p90 and p99 must fit back to about that (a sample of 1,000 requests, seeded).
    experiment = prepare(
        calibration_experiment(20.0), mode="simulate", network_latency="1.5ms", network_jitter="1ms"
    )
    result = run_simulated(partial(run_experiment, experiment, tmp_path), seed=experiment.seed)
    assert result.passed
    assert hop_latency(_all(result.summary)) == pytest.approx(1.5, abs=0.05)
    assert hop_jitter(_all(result.summary)) == pytest.approx(1.0, abs=0.1)


def test_without_jitter_the_calibration_finds_none(tmp_path: Path) -> None:
    experiment = prepare(calibration_experiment(2.0), mode="simulate", network_latency="1.5ms")
    result = run_simulated(partial(run_experiment, experiment, tmp_path), seed=experiment.seed)
    assert hop_jitter(_all(result.summary)) == pytest.approx(0.0, abs=13.0 * HDR)


def test_the_spread_of_uniform_sums_matches_closed_forms() -> None:
    assert uniform_sum_spread(0.99, 1) == pytest.approx(0.98)  # uniform on [-1, 1]
    # Two draws: a triangle on [-2, 2], whose upper tail holds (2 - x)^2 / 8.
    assert uniform_sum_spread(0.99, 2) == pytest.approx(2 - (8 * 0.01) ** 0.5)
    assert uniform_sum_spread(0.5, 4) == pytest.approx(0.0, abs=1e-12)  # symmetric


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


def test_run_takes_the_network_jitter_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = _meshchaos(
        "run", str(_experiment_file(tmp_path)), "--network-latency", "2ms",
        "--network-jitter", "1ms", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    latency = summary["scopes"]["all"]["latency_ms"]
    # Four hops of 1 to 3 ms each around the 5 ms sleep: 9 to 17 ms, spread out (p99 is the
    # first request, which also opens two connections).
    assert 9.0 <= latency["p50"] <= latency["p90"] <= 17.0 * (1 + HDR)
    assert latency["p90"] - latency["p50"] > 1.0
    written = yaml.safe_load((out / "experiment.yaml").read_text())
    assert written["spec"]["network"]["jitter"] == "1ms"


@pytest.mark.parametrize("flag", ["--network-latency", "--network-jitter"])
def test_a_bad_network_figure_exits_2_naming_the_flag(tmp_path: Path, flag: str) -> None:
    done = _meshchaos("run", str(_experiment_file(tmp_path)), flag, "-1ms")
    assert done.returncode == 2
    assert flag in done.stderr
