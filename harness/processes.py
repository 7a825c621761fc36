"""Child processes owned by a task: started, stopped, paused, restarted, always reaped.

:class:`OwnedProcess` runs one command in its own process group. Its :meth:`run` task is the
owner: when the task is cancelled (the run ends, fails or is interrupted) it terminates the
whole group (SIGCONT so a paused group can act on it, SIGTERM, a grace period, SIGKILL) and
reaps it, so nothing outlives the run, descendants included.

Chaos acts through the other methods: :meth:`kill` (SIGKILL to the group, the process stays
down until :meth:`restart`), :meth:`pause` and :meth:`resume` (SIGSTOP, SIGCONT). A process
that exits while nobody asked it to is reported through ``on_crash`` and stays down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import trio

__all__ = ["OwnedProcess"]

_TERMINATE_GRACE_S = 2.0


class OwnedProcess:
    """One supervised command, its output appended to ``log_path``."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        on_crash: Callable[[str], None],
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self._argv = argv
        self._env = None if env is None else {**os.environ, **env}  # added to the inherited one
        self._log_path = log_path
        self._on_crash = on_crash
        self._process: trio.Process | None = None
        self._started_at = 0.0
        self._killed = False
        self._restart = trio.Event()

    async def run(self) -> None:
        """Run the command until cancelled, restarting it after each :meth:`kill` + restart."""
        while True:
            with self._log_path.open("ab") as log:
                self._started_at = trio.current_time()
                self._process = await trio.lowlevel.open_process(
                    self._argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=self._env,
                )
                try:
                    await self._process.wait()
                finally:
                    with trio.CancelScope(shield=True):
                        await _terminate_group(self._process)
            if not self._killed:
                self._on_crash(
                    f"{self.name} exited with status {self._process.returncode}"
                    f" at {trio.current_time() - self._started_at:.1f}s after it started;"
                    f" its log: {self._log_path}"
                )
                return
            await self._restart.wait()
            self._killed = False
            self._restart = trio.Event()

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


async def _terminate_group(process: trio.Process) -> None:
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
