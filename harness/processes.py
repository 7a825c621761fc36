"""Child processes owned by a task: started, stopped, paused, restarted, always reaped.

:class:`OwnedProcess` runs one command in its own process group. Its :meth:`run` task is the
owner: when the task is cancelled (the run ends, fails or is interrupted) it terminates the
whole group (SIGCONT so a paused group can act on it, SIGTERM, a grace period, SIGKILL) and
reaps it, so nothing outlives the run, descendants included.

Chaos acts through the other methods: :meth:`kill` (SIGKILL to the group, the process stays
down until :meth:`restart`), :meth:`pause` and :meth:`resume` (SIGSTOP, SIGCONT). A process
that exits while nobody asked it to is reported through ``on_crash`` and stays down.

A ``python -m`` command of a module the fork server knows (a sidecar, a synthetic or ``app:``
service) is forked from :mod:`harness.forkserver` when one is given, instead of exec'd: the
same entry point in a process of its own, in its own process group, without paying the
interpreter's imports again. Everything above holds for it alike.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import trio

if TYPE_CHECKING:
    from harness.forkserver import ForkServer

__all__ = ["Child", "OwnedProcess", "terminate_group"]

_TERMINATE_GRACE_S = 2.0


class Child(Protocol):
    """What the supervisor needs of a started process (:class:`trio.Process` has it)."""

    @property
    def pid(self) -> int:
        """The process id, which is also its process group id."""

    @property
    def returncode(self) -> int | None:
        """The exit code once it exited (``-N`` after signal N), else ``None``."""

    async def wait(self) -> int:
        """Wait until it exited and was reaped; return :attr:`returncode`."""


class OwnedProcess:
    """One supervised command, its output appended to ``log_path``.

    With ``fork_server``, a command it handles (:meth:`ForkServer.handles`) is forked from it.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        on_crash: Callable[[str], None],
        *,
        env: Mapping[str, str] | None = None,
        fork_server: ForkServer | None = None,
    ) -> None:
        self.name = name
        self._argv = argv
        self._env = env  # added to the inherited environment
        self._fork_server = fork_server if fork_server and fork_server.handles(argv) else None
        self._log_path = log_path
        self._on_crash = on_crash
        self._process: Child | None = None
        self._started_at = 0.0
        self._killed = False
        self._restart = trio.Event()
        self._started = trio.Event()
        self.crash: str | None = None  # why it exited on its own, once it did

    async def run(self) -> None:
        """Run the command until cancelled, restarting it after each :meth:`kill` + restart."""
        while True:
            with self._log_path.open("ab") as log:
                self._started_at = trio.current_time()
                self._process = await self._start(log.fileno())
                self._started.set()
                try:
                    await self._process.wait()
                finally:
                    with trio.CancelScope(shield=True):
                        await terminate_group(self._process)
            if not self._killed:
                self.crash = (
                    f"{self.name} exited with status {self._process.returncode}"
                    f" at {trio.current_time() - self._started_at:.1f}s after it started;"
                    f" its log: {self._log_path}"
                )
                self._on_crash(self.crash)
                return
            await self._restart.wait()
            self._killed = False
            self._restart = trio.Event()

    async def wait_started(self) -> None:
        """Wait until the command has been started (forked or exec'd) for the first time."""
        await self._started.wait()

    async def _start(self, log: int) -> Child:
        if self._fork_server is not None:
            return await self._fork_server.spawn(self._argv, stdout=log, env=self._env)
        return await trio.lowlevel.open_process(
            self._argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=None if self._env is None else {**os.environ, **self._env},
        )

    def kill(self) -> None:
        """SIGKILL the process group; it stays down until :meth:`restart`."""
        if self._process is not None and self._process.returncode is None:
            self._killed = True
            _signal_group(self._process.pid, signal.SIGKILL)

    def restart(self) -> None:
        """Start the command again after a :meth:`kill`."""
        self._restart.set()

    def pause(self) -> None:
        """SIGSTOP the process group: it keeps its connections and answers nothing."""
        if self._process is not None:
            _signal_group(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the process group after :meth:`pause`."""
        if self._process is not None:
            _signal_group(self._process.pid, signal.SIGCONT)


async def terminate_group(process: Child) -> None:
    """Stop ``process`` and everything it started: SIGTERM, a grace period, then SIGKILL."""
    _signal_group(process.pid, signal.SIGTERM)
    _signal_group(process.pid, signal.SIGCONT)  # a stopped group acts on SIGTERM only now
    with trio.move_on_after(_TERMINATE_GRACE_S):
        await process.wait()
    # Whatever is left of the group (the leader, or children it left behind) gets no grace.
    _signal_group(process.pid, signal.SIGKILL)
    await process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
