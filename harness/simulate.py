"""Simulate mode: the whole topology as tasks of one Trio run, in virtual time.

:class:`SimulatedTopology` is the backend of ``mode: simulate`` (DESIGN.md 1). Every replica is
a pod on a :class:`~meshcore.transport.memory.MemoryNetwork`: one
:class:`~meshcore.transport.memory.MemoryHost` carrying the replica's
:class:`~harness.services.SyntheticService` (served by :func:`harness.asgi.serve_asgi`) and its
:class:`~meshcore.sidecar.Sidecar`, the same objects real mode runs in separate processes. The
process faults act on the pod as signals act on processes: ``kill`` cancels the pod's tasks and
crashes its host (listeners gone, connections closed), ``restart`` builds it again from its
configuration (same seeds, so a restarted replica draws what a restarted process would),
``pause`` and ``resume`` stop and restart the host's reading and writing. A pod whose code
raises is recorded in ``crashes`` and stays down, as a process that exits would.

:func:`run_simulated` is the Trio run of simulate mode: ``trio.testing.MockClock`` with
``autojump_threshold=0``, so virtual time jumps to the next deadline whenever every task waits,
and a deterministic scheduler (:func:`deterministic_scheduling`): the same file and seed give
the same run, to the bit.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

import trio
import trio.testing

from harness.asgi import serve_asgi
from harness.experiment import Experiment
from harness.services import SyntheticService
from harness.topology import Replica, Topology, sidecar_document
from meshcore.config import SidecarConfig, read_sidecar_config
from meshcore.sidecar import Sidecar
from meshcore.transport.memory import MemoryHost, MemoryNetwork

__all__ = [
    "SimulatedTopology",
    "deterministic_scheduling",
    "in_simulation",
    "run_in_mode",
    "run_simulated",
    "run_simulated_in_thread",
    "virtual_clock",
]

T = TypeVar("T")

# Set inside a run started by run_simulated: the code knows its clock and scheduler are ours.
_SIMULATING: contextvars.ContextVar[bool] = contextvars.ContextVar("simulating", default=False)
# Trio's scheduler state is global to the process: one simulated run at a time.
_ONE_AT_A_TIME = threading.Lock()


@contextlib.contextmanager
def deterministic_scheduling(seed: int) -> Iterator[None]:
    """Make Trio's scheduler reproducible for the runs started inside this block.

    Trio runs the tasks that became runnable together (a batch) in an order it randomizes
    from a module-level ``random.Random``; which tasks wake first otherwise follows ``id()``
    and set iteration (deadline ties, ``Event.set``, cancellation delivery), which differs from
    one process to the next. Trio's own switch for Hypothesis
    (``_ALLOW_DETERMINISTIC_SCHEDULING``) sorts each batch by task creation order before
    shuffling it, which removes the ``id()`` dependence; seeding the shuffle's ``Random``
    removes the rest. Both are private to trio (checked on 0.35): if they move, this raises
    rather than run a simulation that is not reproducible. The previous state is restored.
    """
    from trio._core import _run as trio_run

    if not hasattr(trio_run, "_ALLOW_DETERMINISTIC_SCHEDULING") or not hasattr(trio_run, "_r"):
        raise RuntimeError(
            f"trio {trio.__version__} has no deterministic scheduling switch: simulate mode"
            " cannot be reproducible with it (meshchaos needs the trio its pyproject pins)"
        )
    flag = trio_run._ALLOW_DETERMINISTIC_SCHEDULING
    state = trio_run._r.getstate()
    setattr(trio_run, "_ALLOW_DETERMINISTIC_SCHEDULING", True)  # noqa: B010 (a Final of trio)
    trio_run._r.seed(f"meshchaos:{seed}")
    try:
        yield
    finally:
        setattr(trio_run, "_ALLOW_DETERMINISTIC_SCHEDULING", flag)  # noqa: B010
        trio_run._r.setstate(state)


def run_simulated(async_fn: Callable[[], Awaitable[T]], *, seed: int) -> T:
    """Run ``async_fn`` in a new Trio run with simulate mode's clock and scheduler."""

    async def simulating() -> T:
        _SIMULATING.set(True)
        return await async_fn()

    with _ONE_AT_A_TIME, deterministic_scheduling(seed):
        return trio.run(simulating, clock=virtual_clock())


def virtual_clock() -> trio.testing.MockClock:
    """Return simulate mode's clock: a ``MockClock`` that jumps whenever every task waits.

    Its rate is 0: virtual time moves only by jumps. ``MockClock`` still reads the wall clock
    at every reading (virtual base + rate x real time elapsed), and Trio and meshchaos read the
    clock about ninety times per simulated request; this one answers the virtual base at once,
    the same value. The base is private to Trio (checked on 0.35): if it moves, this raises.
    """
    clock = trio.testing.MockClock(autojump_threshold=0)
    if not isinstance(clock.__dict__.get("_virtual_base"), float) or clock.rate != 0:
        raise RuntimeError(f"trio {trio.__version__}'s MockClock has no virtual base to read")
    clock.current_time = partial(getattr, clock, "_virtual_base")  # type: ignore[method-assign]
    return clock


def in_simulation() -> bool:
    """Tell whether the current code runs inside :func:`run_simulated`."""
    return _SIMULATING.get()


async def run_simulated_in_thread(async_fn: Callable[[], Awaitable[T]], *, seed: int) -> T:
    """Run ``async_fn`` under :func:`run_simulated` from inside another Trio run.

    A Trio run cannot change its clock, so a simulation started from a running program (a
    test under pytest-trio) gets its own run, in a worker thread, while the caller waits. It
    cannot be cancelled half way (it takes seconds); the caller's cancellation waits for it.
    """
    return await trio.to_thread.run_sync(partial(run_simulated, async_fn, seed=seed))


def run_in_mode(async_fn: Callable[[], Awaitable[T]], experiment: Experiment) -> T:
    """Run ``async_fn`` in a new Trio run: simulated for ``mode: simulate``, real otherwise."""
    if experiment.mode == "simulate":
        return run_simulated(async_fn, seed=experiment.seed)
    return trio.run(async_fn)


class _Pod:
    """One replica: its app and its sidecar on one host, killed and restarted together."""

    def __init__(
        self,
        replica: Replica,
        experiment: Experiment,
        config: SidecarConfig,
        host: MemoryHost,
        log_path: Path,
        on_crash: Callable[[str], None],
        tls_cleartext: bool,
    ) -> None:
        self.replica = replica
        self._tls_cleartext = tls_cleartext
        self.host = host
        self._experiment = experiment
        self._config = config
        self._log_path = log_path
        self._on_crash = on_crash
        self._scope: trio.CancelScope | None = None
        self._killed = False
        self._restart = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the pod until cancelled, bringing it back after each kill and restart."""
        started = False
        while True:
            with trio.CancelScope() as self._scope:
                try:
                    async with trio.open_nursery() as nursery:
                        await self._start(nursery)
                        if not started:
                            started = True
                            task_status.started()
                except Exception as error:
                    if not started:
                        raise  # the topology cannot come up
                    self._crashed(error)
                    return
            if not self._killed:
                return  # nothing left to serve (cannot happen: listeners run until cancelled)
            await self._restart.wait()
            self._killed = False
            self._restart = trio.Event()

    async def _start(self, nursery: trio.Nursery) -> None:
        replica, host = self.replica, self.host
        app = SyntheticService(
            self._experiment.service(replica.service),
            # The seed string of real mode's process (harness.services.main).
            rng=random.Random(f"{self._experiment.seed}:{replica.service}:{replica.index}"),
            network=host,
            outbound=replica.outbound,
        )
        await nursery.start(partial(serve_asgi, app, host, replica.app, on_error=self._log_error))
        sidecar = Sidecar(self._config, host, tls_cleartext=self._tls_cleartext)
        await nursery.start(sidecar.run)

    def _log_error(self, error: BaseException) -> None:
        with self._log_path.open("a") as log:
            log.write("".join(traceback.format_exception(error)))

    def _crashed(self, error: Exception) -> None:
        self.host.crash()
        self._log_error(error)
        self._on_crash(f"{self.replica.name} crashed: {type(error).__name__}: {error}")

    def kill(self) -> None:
        """Cancel every task of the pod and drop its listeners and connections at once."""
        if self._scope is not None and not self._killed:
            self._killed = True
            self._scope.cancel()
            self.host.crash()

    def restart(self) -> None:
        """Bring a killed pod back (same addresses, same configuration, same seeds)."""
        if self._killed:
            self._restart.set()


class SimulatedTopology(Topology):
    """Simulate mode: every replica and its sidecar as tasks on one in-memory network."""

    def __init__(self, experiment: Experiment, workdir: Path, network: MemoryNetwork) -> None:
        super().__init__(experiment, workdir, network)
        self.memory = network
        self.tls_cleartext = experiment.network_tls == "handshake"
        self._logs = workdir / "logs"
        self._pods: dict[str, _Pod] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every pod (each is ready when started), then keep them until cancelled."""
        self._logs.mkdir(parents=True, exist_ok=True)
        ca = self.create_ca()
        async with trio.open_nursery() as nursery:
            for replica in self.all_replicas():
                document = sidecar_document(self.experiment, replica, self.replicas, ca)
                pod = _Pod(
                    replica,
                    self.experiment,
                    read_sidecar_config(document),
                    self.memory.host(replica.name),
                    self._logs / f"{replica.file_stem}.log",
                    self.crashes.append,
                    self.tls_cleartext,
                )
                self._pods[replica.name] = pod
                await nursery.start(pod.run)
            task_status.started()

    def kill(self, replica: Replica) -> None:
        """Kill the replica and its sidecar; they stay down until :meth:`restart`."""
        self._pods[replica.name].kill()

    def restart(self, replica: Replica) -> None:
        """Start a killed replica and its sidecar again."""
        self._pods[replica.name].restart()

    def pause(self, replica: Replica) -> None:
        """Freeze the replica and its sidecar: their connections stall, nothing answers."""
        self._pods[replica.name].host.pause()

    def resume(self, replica: Replica) -> None:
        """Let a paused replica and its sidecar go on."""
        self._pods[replica.name].host.resume()
