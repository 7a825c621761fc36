"""One experiment run: warmup -> baseline -> fault -> recovery -> result.

:class:`ExperimentRun` brings the topology up, drives the load from the start of warmup to the
end of measurement, and runs the fault schedule against the start of measurement. Every
sample is recorded as it arrives, so :attr:`ExperimentRun.state` holds what was measured
however the run ends: completed, failed, or interrupted by SIGINT/SIGTERM (which cancel the
run cleanly; faults are reverted and processes reaped on the way out).
"""

from __future__ import annotations

import random
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import trio

from harness.chaos import AppliedFault, FaultSchedule
from harness.experiment import Experiment
from harness.load import LoadClient, Sample, make_generator
from harness.phases import Phase, phase_at, phase_windows
from harness.recorder import Recorder
from harness.topology import ProcessTopology
from meshcore.transport.network import TcpNetwork

__all__ = ["ExperimentRun", "RunState"]


@dataclass
class RunState:
    """Everything measured so far; valid at any moment of a run."""

    phases: list[Phase]
    latency: Recorder = field(default_factory=Recorder)  # from intended start (corrected)
    uncorrected: Recorder = field(default_factory=Recorder)  # from actual send
    lag: Recorder = field(default_factory=Recorder)  # actual send minus intended start
    dropped: int = 0
    faults: list[AppliedFault] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    measured_s: float = 0.0  # how much of the measured time actually ran
    interrupted: bool = False


class ExperimentRun:
    """Runs ``experiment`` in real mode, writing logs and configs under ``run_dir``.

    ``experiment_file`` is the experiment as run (with overrides resolved); replicas read it.
    """

    def __init__(
        self, experiment: Experiment, experiment_file: Path, run_dir: Path, *, quiet: bool = False
    ) -> None:
        self.experiment = experiment
        self._quiet = quiet
        self.state = RunState(phases=phase_windows(experiment))
        self._experiment_file = experiment_file
        self._run_dir = run_dir
        self._measure_start: float | None = None

    async def execute(self) -> None:
        """Run the experiment to its end, or until SIGINT/SIGTERM."""
        experiment = self.experiment
        network = TcpNetwork()
        topology = ProcessTopology(experiment, self._experiment_file, self._run_dir, network)
        self.state.crashes = topology.crashes
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._cancel_on_signal, signals, nursery.cancel_scope)
                await nursery.start(topology.run)
                load_start = trio.current_time()
                self._measure_start = load_start + experiment.warmup_s
                client = LoadClient(
                    experiment.load, topology.entrypoints(experiment.load.target), network
                )
                generator = make_generator(
                    experiment.load,
                    client,
                    random.Random(f"{experiment.seed}:load"),
                    self._on_sample,
                    self._on_dropped,
                )
                schedule = FaultSchedule(experiment.faults, topology.admins, network)
                self.state.faults = schedule.applied
                async with trio.open_nursery() as run:
                    run.start_soon(generator.run, experiment.warmup_s + experiment.duration_s)
                    run.start_soon(schedule.run, self._measure_start, experiment.duration_s)
                    if not self._quiet:
                        run.start_soon(self._show_progress, load_start)
                nursery.cancel_scope.cancel()
        self._note_measured()

    async def _show_progress(self, load_start: float) -> None:
        """Print one line every second until the run's tasks are done."""
        experiment = self.experiment
        total = experiment.warmup_s + experiment.duration_s
        while True:
            await trio.sleep(1.0)
            elapsed = trio.current_time() - load_start
            if elapsed > total:
                return  # draining the last requests; the verdict follows
            at_s = elapsed - experiment.warmup_s
            phase = "warmup" if at_s < 0 else (phase_at(self.state.phases, at_s) or "between")
            active = [f.spec.name for f in self.state.faults
                      if f.applied_at_s is not None and f.removed_at_s is None]  # fmt: skip
            line = (
                f"[{elapsed:5.1f}s/{total:.0f}s] {phase:<8} "
                f"dropped={self.state.dropped} faults={','.join(active) or '-'}"
            )
            if self.state.crashes:
                line += f" crashed={len(self.state.crashes)}"
            print(line, file=sys.stderr, flush=True)

    async def _cancel_on_signal(self, signals: AsyncIterator[int], scope: trio.CancelScope) -> None:
        async for _ in signals:
            self.state.interrupted = True
            self._note_measured()
            scope.cancel()
            return

    def _note_measured(self) -> None:
        if self._measure_start is not None:
            elapsed = trio.current_time() - self._measure_start
            self.state.measured_s = max(0.0, min(self.experiment.duration_s, elapsed))

    def _measured_offset(self, intended_s: float) -> float:
        """Return seconds after the start of measurement (negative during warmup)."""
        return intended_s - self.experiment.warmup_s

    def _on_sample(self, sample: Sample) -> None:
        at_s = self._measured_offset(sample.intended_s)
        if at_s < 0:
            return  # warmup: load runs, nothing is recorded
        phase = phase_at(self.state.phases, at_s)
        scopes = ("all",) if phase is None else ("all", f"phase={phase}")
        self.state.latency.record(scopes, at_s, sample.latency_s, error=sample.error)
        self.state.uncorrected.record(("all",), at_s, sample.uncorrected_s, error=sample.error)
        self.state.lag.record(("all",), at_s, max(0.0, sample.lag_s), error=False)

    def _on_dropped(self, intended_s: float) -> None:
        if self._measured_offset(intended_s) >= 0:
            self.state.dropped += 1
