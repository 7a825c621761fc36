"""A fork server: Python children started by fork from a process that imported them once.

A replica's app and its sidecar are each ``python -m harness.services ...`` and ``python -m
meshcore ...``; importing trio, hypercorn, cryptography, numpy and the mesh costs each new
interpreter 0.6 s of CPU, and a 20-replica topology starts 40 of them. The fork server (the
"zygote") imports those entry points once, then forks one child per request: the child runs
the same ``main`` that ``python -m`` would have run, in a process of its own.

Theory of operation. :func:`open_fork_server` starts ``python -m harness.forkserver FD
LABEL`` in its own session, with one end of a ``SOCK_SEQPACKET`` socket pair as ``FD``. The
label (the run's log folder) only shows in ``ps``, which shows the children with the
server's command line, since they are forked without exec. A spawn request
is one packet: JSON naming the module (as ``python -m`` would) and its arguments, plus two
descriptors passed with ``SCM_RIGHTS``: the child's log file (its stdout and stderr) and the
write end of a status pipe made for that child alone. The server forks; the child starts a
session of its own (so the supervisor signals its group, as for any other child), asks the
kernel for SIGKILL when the server dies, writes ``pid N`` to its status pipe, and runs the
entry point. The server reaps every child on SIGCHLD and writes ``exit PID CODE`` (``-N``
for signal N, as :attr:`trio.Process.returncode`) to that child's pipe, then closes it. So
the harness's side, :class:`ForkedChild`, reads its own pipe and needs no task of the
server's to learn that its child exited: a supervisor can wait for its child while it is
being cancelled. When the harness is done (or gone: the socket reads end-of-file) or the
server gets SIGTERM, it SIGKILLs the group of every child it still has, reaps them and
exits. A server that dies anyway takes its children with it (``PR_SET_PDEATHSIG``).

The server must be single-threaded when it forks: numpy's OpenBLAS starts a thread pool on
import unless ``OPENBLAS_NUM_THREADS=1``, which the server sets for its imports only.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import gc
import importlib
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from harness.processes import terminate_group

__all__ = ["ENTRY_POINTS", "ForkServer", "ForkServerError", "ForkedChild", "open_fork_server"]

# What a `python -m MODULE` command runs, for the modules the fork server imports up front.
ENTRY_POINTS = {
    "meshcore": "meshcore.__main__:main",
    "harness.services": "harness.services:main",
}
_PR_SET_PDEATHSIG = 1
_MAX_REQUEST_BYTES = 1 << 20


class ForkServerError(Exception):
    """The fork server could not start a child (it is gone; its log says why)."""


class ForkedChild:
    """A child started by the fork server: its pid and, once it exited, its exit code.

    It offers what the supervisor uses of :class:`trio.Process`: ``pid``, ``returncode``
    and ``wait()``.
    """

    def __init__(self, status: trio.lowlevel.FdStream) -> None:
        self._status = status
        self._buffer = b""
        self._lock = trio.Lock()
        self.pid = 0
        self.returncode: int | None = None

    async def wait(self) -> int:
        """Wait until the child has exited (and was reaped); return its exit code."""
        async with self._lock:
            while self.returncode is None:
                await self._read_line()
            return self.returncode

    async def _read_line(self) -> None:
        while b"\n" not in self._buffer:
            data = await self._status.receive_some()
            if not data:
                # The server died without a word: the kernel SIGKILLs its children with it.
                self.returncode = -signal.SIGKILL
                await self._status.aclose()
                return
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        match line.split():
            case [b"pid", pid]:
                self.pid = int(pid)
            case [b"exit", pid, code]:
                self.pid = int(pid)
                self.returncode = int(code)
                await self._status.aclose()
            case _:
                raise ForkServerError(f"unexpected status line from the fork server: {line!r}")


class ForkServer:
    """The harness's handle on a running fork server: :meth:`spawn` starts a child."""

    def __init__(self, control: trio.socket.SocketType, pid: int, log_path: Path) -> None:
        self._control = control
        self.pid = pid
        self._log_path = log_path
        self._send_lock = trio.Lock()

    @staticmethod
    def handles(argv: Sequence[str]) -> bool:
        """Return whether ``argv`` is a ``python -m`` command this server can fork instead."""
        return (
            len(argv) >= 3
            and argv[0] == sys.executable
            and argv[1] == "-m"
            and argv[2] in ENTRY_POINTS
        )

    async def spawn(
        self, argv: Sequence[str], *, stdout: int, env: Mapping[str, str] | None = None
    ) -> ForkedChild:
        """Start ``argv`` (``python -m MODULE ARGS``) forked from the server.

        ``stdout`` is a file descriptor for the child's standard output and error, ``env``
        what the child adds to the environment it inherits. Returns once the child has its own
        session (or has already exited).
        """
        if not self.handles(argv):
            raise ValueError(f"the fork server runs `python -m` {sorted(ENTRY_POINTS)}: {argv}")
        request = {"module": argv[2], "args": list(argv[3:]), "env": dict(env or {})}
        read_end, write_end = os.pipe()
        try:
            fds = array.array("i", [write_end, stdout])
            async with self._send_lock:
                await self._control.sendmsg(
                    [json.dumps(request).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]
                )
        except OSError as error:
            os.close(read_end)
            raise ForkServerError(
                f"the fork server is gone ({error}); {self._log_hint()}"
            ) from None
        finally:
            os.close(write_end)
        status = trio.lowlevel.FdStream(read_end)
        child = ForkedChild(status)
        try:
            await child._read_line()  # `pid N`, or `exit N CODE` for a child that ended at once
        except BaseException:  # cancelled: the server kills the child when it stops
            with trio.CancelScope(shield=True):
                await status.aclose()
            raise
        if child.pid == 0:
            raise ForkServerError(f"the fork server exited; {self._log_hint()}")
        return child

    def _log_hint(self) -> str:
        try:
            tail = self._log_path.read_text(errors="replace").splitlines()[-15:]
        except OSError:
            tail = []
        return f"its log {self._log_path} ends with:\n" + "\n".join(tail)


@contextlib.asynccontextmanager
async def open_fork_server(log_path: Path) -> AsyncIterator[ForkServer]:
    """Start a fork server logging to ``log_path``; stop and reap it when the block ends.

    Its command line, which its children show too, names the folder of ``log_path``.

    The block should end once every child has been reaped: the server SIGKILLs any it still
    has when it stops.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    label = str(log_path.parent)
    with log_path.open("ab") as log, trio.socket.from_stdlib_socket(ours) as control:
        try:
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "harness.forkserver", str(theirs.fileno()), label],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        try:
            yield ForkServer(control, process.pid, log_path)
        finally:
            with trio.CancelScope(shield=True):
                await terminate_group(process)


# --- The server's side: runs in `python -m harness.forkserver FD`, without trio. ---


def serve(control: socket.socket) -> None:
    """Fork a child per request on ``control`` until it closes or SIGTERM/SIGINT arrives."""
    statuses: dict[int, int] = {}  # pid -> write end of its status pipe
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)  # the wakeup fd carries the signal numbers
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ, "control")
    selector.register(wake_read, selectors.EVENT_READ, "signals")
    inherited = [control.fileno(), wake_read, wake_write]
    server = os.getpid()
    running = True
    while running:
        for key, _ in selector.select():
            if key.data == "signals":
                received = os.read(wake_read, 512)
                if signal.SIGTERM in received or signal.SIGINT in received:
                    running = False
                _reap(statuses, os.WNOHANG)
            elif running:
                message, fds, _, _ = socket.recv_fds(control, _MAX_REQUEST_BYTES, 2)
                if not message:  # the harness closed its end, or is gone
                    running = False
                    continue
                status, log = fds
                request = json.loads(message)
                pid = os.fork()
                if pid == 0:
                    _child(request, status, log, [*inherited, *statuses.values()], server)
                statuses[pid] = status
                os.close(log)
    for pid in statuses:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _reap(statuses, 0)


def _reap(statuses: dict[int, int], flags: int) -> None:
    """Reap exited children (all of them, waiting, when ``flags`` is 0) and report each."""
    while statuses:
        try:
            pid, status = os.waitpid(-1, flags)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = statuses.pop(pid, None)
        if fd is not None:
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):  # the harness may have stopped listening
                os.write(fd, f"exit {pid} {code}\n".encode())
            os.close(fd)


def _child(
    request: dict[str, Any], status: int, log: int, inherited: list[int], server: int
) -> None:
    """Become the requested program in the forked child of ``server``; never returns."""
    code = 1
    try:
        os.setsid()  # its own session and process group, as `start_new_session=True` gives
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != server:  # the server died before the line above
            os._exit(1)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in inherited:
            os.close(fd)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.write(status, f"pid {os.getpid()}\n".encode())
        os.close(status)
        os.environ.update(request["env"])
        module: str = request["module"]
        args: list[str] = request["args"]
        sys.argv = [module, *args]
        gc.enable()
        code = _run_entry_point(ENTRY_POINTS[module], args)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _run_entry_point(entry: str, args: list[str]) -> int:
    """Call ``module:function`` with ``args``; return the exit code ``python -m`` would give."""
    module, _, function = entry.partition(":")
    main: Callable[[list[str]], int | None] = getattr(importlib.import_module(module), function)
    try:
        result = main(args)
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)
        return 1
    return result or 0


def main() -> None:
    """Run the server: ``python -m harness.forkserver FD LABEL`` (``FD``: its socket's end)."""
    control = socket.socket(fileno=int(sys.argv[1]))
    blas_threads = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # no thread pool in a process that forks
    gc.disable()  # until the children enable it: fewer copy-on-write pages (gc.freeze docs)
    for entry in ENTRY_POINTS.values():
        importlib.import_module(entry.partition(":")[0])
    if blas_threads is None:
        del os.environ["OPENBLAS_NUM_THREADS"]  # the children's environment stays the harness's
    else:
        os.environ["OPENBLAS_NUM_THREADS"] = blas_threads
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise SystemExit(f"fork server: {threads} threads after importing; it cannot fork safely")
    gc.freeze()
    serve(control)


if __name__ == "__main__":
    main()
