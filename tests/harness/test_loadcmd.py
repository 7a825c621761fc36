"""``meshchaos load``: targets, exact merging of workers, and one real run."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.load import Sample
from harness.loadcmd import LAG, LATENCY, UNCORRECTED, LoadRun, parse_target
from harness.recorder import Recorder
from meshcore.model import Endpoint
from meshcore.transport.network import TcpNetwork


def _wait_listening(port: int) -> None:
    """Wait (up to 10 s) until something accepts connections on ``port``."""
    for _ in range(500):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        select.select([], [], [], 0.02)  # a short wait without time.sleep
    raise AssertionError(f"nothing listens on {port}")


def test_targets_stay_on_the_loopback() -> None:
    target = parse_target("http://localhost:8080/a/b?c=1")
    assert target.endpoint == Endpoint("127.0.0.1", 8080)
    assert (target.host, target.path) == ("localhost:8080", "/a/b?c=1")
    for url in ("http://10.0.0.1:80/", "https://127.0.0.1/", "http://example.com/"):
        with pytest.raises(ValueError, match=r"127\.0\.0\.1|http://"):
            parse_target(url)


def _sample(at_s: float, latency_s: float, outcome: str = "2xx") -> Sample:
    return Sample(at_s, latency_s, latency_s / 2, latency_s / 4, outcome)


def test_workers_merge_exactly_through_encoded_intervals() -> None:
    first, second, together = LoadRun(), LoadRun(), LoadRun()
    for index in range(3000):
        sample = _sample(index / 1000, 0.001 + (index % 97) / 1000, "5xx" if index % 50 else "2xx")
        (first if index % 3 else second).on_sample(sample)
        together.on_sample(sample)
    second.on_dropped(1.0)
    merged = LoadRun()
    merged.add_encoded(json.loads(json.dumps(first.encode())))
    merged.add_encoded(json.loads(json.dumps(second.encode())))
    assert merged.summary(1000, 3.0) == {**together.summary(1000, 3.0), "dropped": 1}
    mine = [i.histogram.get_total_count() for i in merged.recorder.intervals(LATENCY)]
    theirs = [i.histogram.get_total_count() for i in together.recorder.intervals(LATENCY)]
    assert mine == theirs == [1000, 1000, 1000]
    assert [i.errors for i in merged.recorder.intervals(LATENCY)] == [980, 980, 980]


def test_buffered_samples_are_recorded_as_if_one_by_one() -> None:
    run, reference = LoadRun(), Recorder()
    for index in range(2500):  # more than two batches
        sample = Sample(index / 700, (index % 89) / 1000, (index % 13) / 1000,
                        (index % 7 - 2) / 10_000, "5xx" if index % 11 == 0 else "2xx")  # fmt: skip
        run.on_sample(sample)
        reference.record([LATENCY], sample.intended_s, sample.latency_s, error=sample.error)
        reference.record([UNCORRECTED], sample.intended_s, sample.uncorrected_s, error=False)
        reference.record([LAG], sample.intended_s, max(0.0, sample.lag_s), error=False)
    for scope in (LATENCY, UNCORRECTED, LAG):
        assert run.recorder.encode_scope(scope) == reference.encode_scope(scope)
    assert run.recorder.scope(LATENCY, 1.0).errors == 228
    assert run.outcomes == {"2xx": 2272, "5xx": 228}


@pytest.mark.e2e
def test_load_command_against_a_standalone_sidecar(tmp_path: Path) -> None:
    # The admin API of a standalone sidecar is a real HTTP/1.1 server to aim at.
    [port] = [e.port for e in TcpNetwork().allocate("127.0.0.1", 1)]
    config = tmp_path / "sidecar.yaml"
    config.write_text(f"name: target\nadmin: 127.0.0.1:{port}\n")
    sidecar = subprocess.Popen([sys.executable, "-m", "meshcore", "--config", str(config)])
    try:
        _wait_listening(port)
        result = subprocess.run(
            [sys.executable, "-m", "harness.cli", "load", f"http://127.0.0.1:{port}/ready",
             "--rate", "200", "--duration", "2s", "--workers", "2", "--json",
             "--hlog", str(tmp_path / "load.hlog")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        sidecar.terminate()
        sidecar.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["target_rps"] == 200
    assert summary["requests"] + summary["dropped"] == 400
    assert summary["outcomes"] == {"2xx": summary["requests"]}
    assert set(summary["latency_ms"]) == {"p50", "p90", "p99", "p99.9", "max", "mean"}
    assert "Tag=generator-lag" in (tmp_path / "load.hlog").read_text()
