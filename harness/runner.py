"""One experiment run: warmup -> baseline -> fault -> recovery -> result.

:class:`ExperimentRun` brings the topology up, drives the load from the start of warmup to the
end of measurement, and runs the fault schedule against the start of measurement. Every
sample is recorded as it arrives, so :attr:`ExperimentRun.state` holds what was measured
however the run ends: completed, failed, or interrupted by SIGINT/SIGTERM (which cancel the
run cleanly; faults are reverted and processes reaped on the way out). The sidecars' edge
measurements are reset at the start of measurement and collected when the load ends, however it
ends, while the topology is still up (:mod:`harness.edges`).

Two SLO checks can end a run early (the decisions are :mod:`harness.gating`'s): the
steady-state SLOs at the end of the baseline, before any fault is injected, and the guard rails
(``abortOnFail``), checked every second. Either stops the load and the schedule; samples that
the cancellation cuts short are not recorded.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from harness.chaos import AppliedFault, FaultSchedule
from harness.edges import collect_edges, merge_edges, reset_edges, status_scopes
from harness.experiment import Experiment
from harness.gating import (
    Abort,
    Measurements,
    ScopePlan,
    SteadyState,
    check_steady_state,
    guard_rail_failure,
    steady_state_at,
)
from harness.load import LoadClient, Sample, make_generator
from harness.logfiles import compress_logs, point_at_compressed
from harness.pacing import TrioSleeper, precise_sleepers
from harness.phases import Phase, phase_at, phase_windows
from harness.recorder import Recorder
from harness.simulate import SimulatedTopology, in_simulation
from harness.topology import ProcessTopology
from meshcore.transport.memory import MemoryNetwork
from meshcore.transport.network import TcpNetwork

__all__ = ["ExperimentRun", "Progress", "RunState"]

_COLLECT_TIMEOUT_S = 5.0  # how long the sidecars have to hand over their edge measurements


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
    steady_state: SteadyState | None = None  # checked at the end of the baseline
    aborted: Abort | None = None  # a guard rail stopped the run


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run stands, reported once a second (the CLI draws it)."""

    elapsed_s: float  # since the load started, warmup included
    total_s: float  # warmup + duration
    phase: str  # warmup, baseline, fault, recovery, between (two faults) or draining (the end)
    active_faults: tuple[str, ...]
    dropped: int
    crashes: int


class ExperimentRun:
    """Runs ``experiment`` in its mode, writing logs and configs under ``run_dir``.

    Real mode runs processes on the wall clock; simulate mode runs everything as tasks on an
    in-memory network, and must itself run under :func:`harness.simulate.run_simulated`.

    ``experiment_file`` is the experiment as run (with overrides resolved); replicas read it.
    ``on_progress`` is called once a second while the load runs.
    """

    def __init__(
        self,
        experiment: Experiment,
        experiment_file: Path,
        run_dir: Path,
        *,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.experiment = experiment
        self._on_progress = on_progress
        self.state = RunState(phases=phase_windows(experiment))
        self._experiment_file = experiment_file
        self._run_dir = run_dir
        self._measure_start: float | None = None
        self._scopes = ScopePlan(experiment)
        self._stopped = False
        self._run_scope: trio.CancelScope | None = None  # the load and the faults

    async def execute(self) -> None:
        """Run the experiment to its end, or until SIGINT/SIGTERM; then compress its logs."""
        try:
            await self._execute()
        finally:
            # However the run ended, the topology has stopped every process and closed every
            # log on the way out: nothing writes to logs/ any more.
            self._compress_logs()

    async def _execute(self) -> None:
        experiment = self.experiment
        topology = self._topology()
        self.state.crashes = topology.crashes
        with _termination_signals() as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._cancel_on_signal, signals, nursery.cancel_scope)
                await nursery.start(topology.run)
                load_start = trio.current_time()
                self._measure_start = load_start + experiment.warmup_s
                client = LoadClient(
                    experiment.load,
                    topology.entrypoints(experiment.load.target),
                    topology.client_network(),  # mTLS as `loadgen` unless mtls is DISABLE
                )
                generator = make_generator(
                    experiment.load,
                    client,
                    random.Random(f"{experiment.seed}:load"),
                    self._on_sample,
                    self._on_dropped,
                    # On the wall clock, sleep to the microsecond: trio's timers wake up to
                    # 1 ms late, which real mode measured as generator lag (docs/simulate.md).
                    sleepers=TrioSleeper if experiment.mode == "simulate" else precise_sleepers(),
                )
                schedule = FaultSchedule(experiment.faults, topology)
                self.state.faults = schedule.applied
                async with trio.open_nursery() as run:
                    self._run_scope = run.cancel_scope
                    run.start_soon(generator.run, experiment.warmup_s + experiment.duration_s)
                    run.start_soon(self._faults, schedule, run.cancel_scope)
                    run.start_soon(self._every_second, load_start, run.cancel_scope)
                    run.start_soon(self._reset_edges, topology)
                await self._collect_edges(topology)  # while the topology is still up
                nursery.cancel_scope.cancel()
        self._note_measured()

    def _topology(self) -> ProcessTopology | SimulatedTopology:
        """Return the backend of the experiment's mode (real when it names none)."""
        experiment = self.experiment
        if experiment.mode == "simulate":
            if not in_simulation():
                raise RuntimeError("simulate mode runs under harness.simulate.run_simulated")
            network = MemoryNetwork(
                latency_s=experiment.network_latency_s,
                jitter_s=experiment.network_jitter_s,
                rng=random.Random(f"{experiment.seed}:network"),
            )
            return SimulatedTopology(experiment, self._run_dir, network)
        return ProcessTopology(experiment, self._experiment_file, self._run_dir, TcpNetwork())

    async def _faults(self, schedule: FaultSchedule, run: trio.CancelScope) -> None:
        """Run the fault schedule, once the steady state (if any) is met."""
        assert self._measure_start is not None
        check_at_s = steady_state_at(self.experiment)
        if check_at_s is not None:
            await trio.sleep_until(self._measure_start + check_at_s)
            steady = check_steady_state(self.experiment, self._measured(check_at_s))
            self.state.steady_state = steady
            if not steady.met:
                self._stop(run, check_at_s)
                return
        await schedule.run(self._measure_start, self.experiment.duration_s)

    async def _every_second(self, load_start: float, run: trio.CancelScope) -> None:
        """Check the guard rails and report progress once a second, until the load ends."""
        assert self._measure_start is not None
        experiment = self.experiment
        total = experiment.warmup_s + experiment.duration_s
        for tick in range(1, int(total) + 1):
            await trio.sleep_until(load_start + tick)
            at_s = min(trio.current_time() - self._measure_start, experiment.duration_s)
            if at_s >= 0:
                failed = guard_rail_failure(experiment, self._measured(at_s))
                if failed is not None:
                    self.state.aborted = Abort(at_s, failed)
                    self._stop(run, at_s)
                    return
            if self._on_progress is not None:
                self._on_progress(self._progress(tick, total, at_s))

    def _progress(self, elapsed_s: float, total_s: float, at_s: float) -> Progress:
        if at_s < 0:
            phase = "warmup"
        elif at_s >= self.experiment.duration_s:
            phase = "draining"  # the last requests finish; the verdict follows
        else:
            phase = phase_at(self.state.phases, at_s) or "between"
        active = tuple(
            f.spec.name
            for f in self.state.faults
            if f.applied_at_s is not None and f.removed_at_s is None
        )
        state = self.state
        return Progress(elapsed_s, total_s, phase, active, state.dropped, len(state.crashes))

    def _measured(self, at_s: float) -> Measurements:
        return Measurements(self.state.latency, self.state.phases, at_s, self.state.dropped)

    def _stop(self, run: trio.CancelScope, at_s: float) -> None:
        """End the run at ``at_s``, when it was decided; later samples are not recorded."""
        self.state.measured_s = at_s
        self._stopped = True
        run.cancel()

    async def _reset_edges(self, topology: ProcessTopology | SimulatedTopology) -> None:
        """Start the sidecars' edge measurement with the run's (their intervals line up)."""
        assert self._measure_start is not None
        await trio.sleep_until(self._measure_start)
        await reset_edges(topology.network, [r.admin for r in topology.all_replicas()])

    async def _collect_edges(self, topology: ProcessTopology | SimulatedTopology) -> None:
        """Merge the sidecars' edge measurements into the recorder (best effort)."""
        self._note_measured()
        admins = [replica.admin for replica in topology.all_replicas()]
        documents = await collect_edges(topology.network, admins, timeout_s=_COLLECT_TIMEOUT_S)
        state = self.state
        merge_edges(
            state.latency,
            documents,
            state.phases,
            measured_s=state.measured_s,
            wanted=status_scopes(self.experiment),
        )

    async def _cancel_on_signal(self, signals: AsyncIterator[int], scope: trio.CancelScope) -> None:
        async for _ in signals:
            self.state.interrupted = True
            self._note_measured()
            # Once the load runs, stop it and the faults only: the edge measurements are then
            # collected before everything else (the topology) is cancelled.
            (self._run_scope or scope).cancel()
            return

    def _compress_logs(self) -> None:
        """Gzip logs/*.log (:mod:`harness.logfiles`); crash messages then name the .gz files."""
        try:
            renamed = compress_logs(self._run_dir / "logs")
        except OSError:
            return  # the logs stay plain text: no result depends on them
        self.state.crashes[:] = point_at_compressed(self.state.crashes, renamed)

    def _note_measured(self) -> None:
        if self._measure_start is not None and not self._stopped:
            elapsed = trio.current_time() - self._measure_start
            self.state.measured_s = max(0.0, min(self.experiment.duration_s, elapsed))

    def _measured_offset(self, intended_s: float) -> float:
        """Return seconds after the start of measurement (negative during warmup)."""
        return intended_s - self.experiment.warmup_s

    def _on_sample(self, sample: Sample) -> None:
        at_s = self._measured_offset(sample.intended_s)
        if at_s < 0 or self._stopped:
            return  # warmup: load runs, nothing is recorded; or cut short by an early stop
        phase = phase_at(self.state.phases, at_s)
        scopes = self._scopes.scopes(phase, sample.path, sample.outcome)
        self.state.latency.record(scopes, at_s, sample.latency_s, error=sample.error)
        self.state.uncorrected.record(("all",), at_s, sample.uncorrected_s, error=sample.error)
        self.state.lag.record(("all",), at_s, max(0.0, sample.lag_s), error=False)

    def _on_dropped(self, intended_s: float) -> None:
        if self._measured_offset(intended_s) >= 0:
            self.state.dropped += 1


class _NoSignals:
    """An iterator of signals that never yields: what a run outside the main thread hears."""

    def __aiter__(self) -> _NoSignals:
        return self

    async def __anext__(self) -> int:
        await trio.sleep_forever()
        raise StopAsyncIteration


def _termination_signals() -> contextlib.AbstractContextManager[AsyncIterator[int]]:
    """Listen for SIGINT and SIGTERM, which only the main thread can do.

    A simulation started from a test under pytest-trio runs in a worker thread
    (:func:`harness.simulate.run_simulated_in_thread`); its caller owns the interruption.
    """
    if threading.current_thread() is threading.main_thread():
        return trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
    return contextlib.nullcontext(_NoSignals())
