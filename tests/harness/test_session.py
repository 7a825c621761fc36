"""The run-and-report core shared by the CLI and the plugin, without running processes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from harness.experiment import ExperimentError, parse_experiment
from harness.phases import phase_windows
from harness.runner import Progress, RunState
from harness.session import RunResult, prepare
from harness.summary import build_summary, scope_durations
from harness.terminal import plain_progress_line, print_verdict, progress_display

TINY = """\
apiVersion: meshchaos/v1
kind: Experiment
metadata: {name: tiny}
spec:
  duration: 3s
  services:
    - {name: web, script: [{sleep: 2ms}]}
  mesh: {mtls: DISABLE}
  load: {target: web, rate: 20/s}
  slos:
    - {name: fast, objective: "p99 < 5ms"}
"""


def test_prepare_accepts_a_path_a_document_or_an_experiment(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    from_path = prepare(path, duration="5s", warmup=1, seed=3)
    assert (from_path.duration_s, from_path.warmup_s, from_path.seed) == (5.0, 1.0, 3)
    from_document = prepare(yaml.safe_load(TINY))
    assert from_document.slos == from_path.slos
    experiment = parse_experiment(TINY, "tiny.yaml")
    assert prepare(experiment) is not experiment  # checked again, unchanged
    assert prepare(experiment).slos == experiment.slos


def test_prepare_refuses_what_cannot_run() -> None:
    experiment = parse_experiment(TINY, "tiny.yaml")
    with pytest.raises(TypeError, match=r"unknown override\(s\) speed; known: duration"):
        prepare(experiment, speed=2)
    with pytest.raises(TypeError, match="seed must be an int"):
        prepare(experiment, seed="7")
    assert prepare(experiment, mode="simulate").mode == "simulate"
    # A document's lines are those of its YAML form, yaml.safe_dump(document, sort_keys=False).
    with pytest.raises(ExperimentError, match="<experiment document>:6:13: duration"):
        prepare(yaml.safe_load(TINY.replace("3s", "3")))


def result_of(latencies_s: list[float], tmp_path: Path) -> RunResult:
    experiment = parse_experiment(TINY, "tiny.yaml")
    state = RunState(phases=phase_windows(experiment), measured_s=3.0)
    for index, latency_s in enumerate(latencies_s):
        state.latency.record(("all", "phase=baseline"), index / 100, latency_s, error=False)
    summary = build_summary(
        experiment, state, mode="real", started_at="", finished_at="", versions={}
    )
    return RunResult(experiment, tmp_path, summary, state.latency, scope_durations(state))


def test_a_result_reads_scopes_and_explains_its_failures(tmp_path: Path) -> None:
    result = result_of([0.002] * 98 + [0.010] * 2, tmp_path)
    assert not result.passed
    assert result.exit_code == 1
    stats = result.scope("phase=baseline")
    assert (stats.requests, stats.throughput_rps) == (100, 100 / 3)
    assert stats.percentile_ms(99.9) == pytest.approx(10.0, rel=1e-3)
    with pytest.raises(
        KeyError, match="no scope 'phase=fault' in this run; recorded scopes: all, phase="
    ):
        result.scope("phase=fault")
    assert result.explain().splitlines() == [
        "meshchaos tiny: FAIL, 1 of 1 SLOs failed",
        "FAIL 'fast': observed 10ms, objective p99 < 5ms, scope all",
        f"report: {tmp_path}",
    ]
    assert result_of([0.002] * 10, tmp_path).exit_code == 0


def test_progress_lines_for_logs() -> None:
    progress = Progress(12.0, 22.0, "fault", ("backend-slow",), 3, 1)
    assert plain_progress_line(progress) == (
        "[ 12.0s/22s] fault    dropped=3 faults=backend-slow crashed=1"
    )
    stream = io.StringIO()
    with progress_display(22.0, quiet=False, stream=stream) as show:
        assert show is not None
        show(progress)
    assert stream.getvalue() == plain_progress_line(progress) + "\n"
    with progress_display(22.0, quiet=True, stream=stream) as show:
        assert show is None


def test_the_verdict_is_plain_text_off_a_terminal(tmp_path: Path) -> None:
    stream = io.StringIO()
    print_verdict(result_of([0.002], tmp_path).summary, quiet=False, stream=stream)
    assert stream.getvalue().splitlines()[-2:] == ["verdict: PASS", ""]
