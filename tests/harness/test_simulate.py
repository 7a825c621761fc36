"""Simulate mode: whole experiments in virtual time, reproducible, with every fault kind.

Each test runs a real experiment (services, sidecars, load generator, chaos) in one Trio run
on the in-memory network under simulate mode's clock, and asserts exact virtual latencies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from harness.experiment import ExperimentError
from harness.session import Meshchaos, RunResult, prepare, run_experiment
from harness.simulate import run_simulated, virtual_clock

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))
# HDR histograms keep 3 significant digits: a value reads back within 1 part in 1000.
HDR = 1e-3


def _document(**spec: Any) -> dict[str, Any]:
    """A frontend that sleeps 2 ms and calls a backend that sleeps 10 ms, at 50/s."""
    base: dict[str, Any] = {
        "seed": 3,
        "mode": "simulate",
        "warmup": "1s",
        "duration": "4s",
        "services": [
            {"name": "frontend", "script": [{"sleep": "2ms"}, {"call": "backend"}]},
            {"name": "backend", "script": [{"sleep": "10ms"}]},
        ],
        "mesh": {"mtls": "DISABLE"},
        "load": {"target": "frontend", "rate": "50/s", "connections": 8},
    }
    base.update(spec)
    return {
        "apiVersion": "meshchaos/v1",
        "kind": "Experiment",
        "metadata": {"name": "simulated"},
        "spec": base,
    }


def _run(document: dict[str, Any], run_dir: Path) -> RunResult:
    experiment = prepare(document)
    return run_simulated(partial(run_experiment, experiment, run_dir), seed=experiment.seed)


def _latency(result: RunResult, scope: str) -> dict[str, float]:
    latency: dict[str, float] = result.summary["scopes"][scope]["latency_ms"]
    return latency


def test_sleeps_add_up_to_exact_virtual_latencies(tmp_path: Path) -> None:
    result = _run(_document(), tmp_path)
    assert result.summary["mode"] == "simulate"
    assert result.scope("all").requests == 200
    latency = _latency(result, "all")
    # 2 ms + 10 ms of sleeps, and not a microsecond of CPU in virtual time.
    for percentile in ("p50", "p99", "max"):
        assert latency[percentile] == pytest.approx(12.0, rel=HDR)


def test_network_latency_adds_one_way_per_hop_between_pods(tmp_path: Path) -> None:
    document = _document(network={"latency": "1ms"})
    result = _run(document, tmp_path)
    # loadgen -> frontend pod and frontend pod -> backend pod: 2 ms each way per request, on
    # connections opened during warmup (inside a pod, sidecar <-> app, there is none).
    latency = _latency(result, "all")
    assert latency["p50"] == pytest.approx(16.0, rel=HDR)
    assert latency["max"] == pytest.approx(16.0, rel=HDR)


def test_delay_fault_adds_its_delay_in_the_fault_phase_only(tmp_path: Path) -> None:
    fault = {"target": "backend", "start": "1s", "duration": "1s", "delay": {"fixed": "100ms"}}
    result = _run(_document(faults=[fault]), tmp_path)
    assert _latency(result, "phase=baseline")["max"] == pytest.approx(12.0, rel=HDR)
    assert _latency(result, "phase=fault")["p50"] == pytest.approx(112.0, rel=HDR)
    assert _latency(result, "phase=recovery")["max"] == pytest.approx(12.0, rel=HDR)
    [applied] = result.summary["faults"]
    assert (applied["applied_at_s"], applied["removed_at_s"]) == (1.0, 2.0)


def test_abort_fault_fails_exactly_the_fault_phase(tmp_path: Path) -> None:
    fault = {"target": "backend", "start": "1s", "duration": "1s", "abort": {"httpStatus": 503}}
    document = _document(faults=[fault])
    document["spec"]["mesh"]["destinations"] = {"backend": {"retries": {"attempts": 0}}}
    result = _run(document, tmp_path)
    scopes = result.summary["scopes"]
    assert scopes["phase=baseline"]["error_rate"] == 0
    assert scopes["phase=fault"]["errors"] == scopes["phase=fault"]["requests"] == 50
    assert scopes["phase=recovery"]["error_rate"] == 0


def test_kill_takes_the_replica_down_and_restart_brings_it_back(tmp_path: Path) -> None:
    fault = {"target": "backend/0", "start": "1s", "duration": "1s", "kill": {}}
    document = _document(faults=[fault])
    document["spec"]["mesh"]["destinations"] = {"backend": {"retries": {"attempts": 0}}}
    result = _run(document, tmp_path)
    scopes = result.summary["scopes"]
    # The only replica is gone: every call fails at connect (frontend answers 502) ...
    assert scopes["phase=fault"]["errors"] == scopes["phase=fault"]["requests"] == 50
    # ... and once restarted it serves as before, on new connections.
    assert scopes["phase=recovery"]["error_rate"] == 0
    assert _latency(result, "phase=recovery")["max"] == pytest.approx(12.0, rel=HDR)
    assert result.summary.get("crashes", []) == []


def test_pause_stalls_requests_until_resume(tmp_path: Path) -> None:
    fault = {"target": "backend", "start": "1s", "duration": "1s", "pause": {}}
    result = _run(_document(faults=[fault]), tmp_path)
    scopes = result.summary["scopes"]
    assert scopes["all"]["error_rate"] == 0  # no timeout is set: requests wait, then succeed
    # The request sent as the pause starts reaches the backend 2 ms later, waits until the
    # resume (998 ms), then its 10 ms there: 1010 ms.
    assert _latency(result, "phase=fault")["max"] == pytest.approx(1010.0, rel=HDR)
    # The load generator's 8 connections drain the backlog within a few round trips.
    assert _latency(result, "phase=recovery")["p50"] == pytest.approx(12.0, rel=HDR)
    assert _latency(result, "phase=recovery")["max"] < 100


def test_ctrl_c_during_a_simulation_still_writes_the_partial_report(tmp_path: Path) -> None:
    experiment = prepare(_document())

    async def interrupted() -> RunResult:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_interrupt_at, 3.0)  # 2 s into the measured time
            result = await run_experiment(experiment, tmp_path)
            nursery.cancel_scope.cancel()
        return result

    result = run_simulated(interrupted, seed=experiment.seed)
    assert result.exit_code == 130
    assert result.summary["interrupted"]
    assert (tmp_path / "summary.json").exists()
    assert (tmp_path / "latency.hlog").exists()
    # Measured 2 s at 50/s: 100 requests, and the one sent as the signal came, cut short.
    assert result.summary["measured_s"] == 2.0
    assert (result.scope("all").requests, result.scope("all").errors) == (101, 1)


async def _interrupt_at(virtual_s: float) -> None:
    await trio.sleep_until(virtual_s)
    signal.raise_signal(signal.SIGINT)


async def test_a_test_under_pytest_trio_runs_a_simulation_in_a_run_of_its_own(
    tmp_path: Path,
) -> None:
    meshchaos = Meshchaos(tmp_path)
    result = await meshchaos.run(_document(), duration="2s")
    assert result.summary["mode"] == "simulate"
    assert _latency(result, "all")["p50"] == pytest.approx(12.0, rel=HDR)


def _comparable(run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """Return a run's summary without wall-clock fields, and its histograms' interval lines."""
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("started_at", "finished_at", "versions"):
        summary.pop(key, None)
    lines = (run_dir / "latency.hlog").read_text().splitlines()
    return summary, [line for line in lines if not line.startswith("#")]


def _assert_reproducible(path: Path, tmp_path: Path, *flags: str) -> None:
    # Two processes with different string-hash seeds, so that no set or dict order of one
    # process can make the two runs agree by chance.
    for hash_seed in ("1", "2"):
        subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", str(path), "--mode", "simulate",
             "--out", str(tmp_path / hash_seed), "--quiet", *flags],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            cwd=ROOT,
            check=False,
            capture_output=True,
        )  # fmt: skip
    first, second = _comparable(tmp_path / "1"), _comparable(tmp_path / "2")
    assert first[0]["mode"] == "simulate"
    assert first[0]["scopes"]["all"]["requests"] > 0
    assert first == second


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_the_same_file_and_seed_give_the_same_run_to_the_bit(path: Path, tmp_path: Path) -> None:
    _assert_reproducible(path, tmp_path)


def test_a_jittered_network_gives_the_same_run_to_the_bit(tmp_path: Path) -> None:
    # The jitter's draws come from the seed too; a timeout cascade has three tiers of them.
    path = ROOT / "experiments" / "timeout-cascade.yaml"
    _assert_reproducible(path, tmp_path, "--network-latency", "1ms", "--network-jitter", "1ms")


def test_a_service_given_by_a_command_cannot_be_simulated() -> None:
    document = _document()
    document["spec"]["services"][1] = {"name": "backend", "command": ["backend"], "port": 8000}
    with pytest.raises(ExperimentError, match="command: a service given by command cannot run"):
        prepare(document)
    assert prepare(document, mode="real").mode == "real"


def test_handshake_only_mtls_gives_the_run_full_tls_gives(tmp_path: Path) -> None:
    # spec.network.tls: handshake keeps every handshake, identity and authorization decision;
    # only the encryption of the bytes after it goes. The runs agree to the bit.
    mesh = {
        "mtls": "STRICT",
        "authorization": [{"destination": "backend", "action": "ALLOW", "from": ["frontend"]}],
    }
    runs = []
    for tls in ("handshake", "full"):
        result = _run(_document(mesh=mesh, network={"tls": tls}), tmp_path / tls)
        assert result.scope("all").requests == 200
        assert result.scope("all").errors == 0  # the backend saw the frontend's identity
        summary, intervals = _comparable(tmp_path / tls)
        runs.append((summary["scopes"], summary["slos"], intervals))
    assert runs[0] == runs[1]


def test_network_tls_takes_handshake_or_full() -> None:
    with pytest.raises(ExperimentError, match="tls: expected one of handshake, full"):
        prepare(_document(network={"tls": "none"}))


def test_the_virtual_clock_reads_its_jumps_and_autojumps() -> None:
    clock = virtual_clock()
    clock.jump(1.5)
    assert clock.current_time() == 1.5

    async def sleeper() -> float:
        await trio.sleep(3600)
        return trio.current_time()

    assert run_simulated(sleeper, seed=1) == 3600.0
