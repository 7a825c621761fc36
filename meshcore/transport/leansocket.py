"""The TCP stream of every real connection: trio's stream contract over a plain socket.

:class:`trio.SocketStream` wraps each ``send_all`` and ``receive_some`` in a conflict
detector, an error-translation context manager and a memoryview context, and each of its
socket calls goes through a trio socket object and an async context manager around the
system call. A sidecar between wrk and nginx (``bench/proxy_overhead/run.py``) spent a quarter
less CPU per request once both its listener and its pool used this stream (README, Benchmarks).

:class:`LeanSocketStream` keeps trio's semantics and drops the layers. Like trio's socket
calls, ``send_all`` and ``receive_some`` try the system call first: a call that succeeds at
once is still a full checkpoint (a cancellation point before the call, an uncancellable yield
to the scheduler after it, so no data is lost to a cancellation and a busy connection cannot
starve the others), and only a call that would block waits for readiness with
:func:`trio.lowlevel.wait_readable` / :func:`~trio.lowlevel.wait_writable`. Errors are
translated as trio translates them: a reset or a broken pipe is
:class:`trio.BrokenResourceError`, use after close :class:`trio.ClosedResourceError` (a task
blocked on the socket is woken with it through :func:`trio.lowlevel.notify_closing`), and two
tasks sending at once (``send_all``, ``wait_send_all_might_not_block``, ``send_eof``) get
:class:`trio.BusyResourceError`, as do two tasks both waiting to receive.
``trio.testing.check_half_closeable_stream`` runs on it in the tests.

:func:`open_tcp_stream` and :func:`serve_tcp` are the connecting and the listening halves
that :class:`~meshcore.transport.network.TcpNetwork` is made of.
"""

from __future__ import annotations

import errno
import select
import socket
import threading
from collections.abc import Awaitable, Callable

import trio

from meshcore.model import Endpoint
from meshcore.transport.peekable import PeekableStream

__all__ = ["LeanSocketStream", "open_tcp_stream", "serve_tcp"]

_DEFAULT_READ = 65536
_CLOSED_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})
# accept() errors that concern only the connection being accepted (trio's SocketListener list),
# and those that say the process is out of something: retry after a pause, as trio does.
_IGNORED_ACCEPT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EPERM",
        "ECONNABORTED",
        "EPROTO",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
        "ENOSR",
        "ESOCKTNOSUPPORT",
        "EPROTONOSUPPORT",
        "ETIMEDOUT",
        "ECONNRESET",
    )
    if hasattr(errno, name)
)
_CAPACITY_ACCEPT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_CAPACITY_PAUSE_S = 0.1
_BACKLOG = 65535  # the kernel caps it at net.core.somaxconn

# One poll object per thread for every look (nothing awaits between register and unregister):
# making one per look costs twice as much.
_PER_THREAD = threading.local()


def _stream_error(error: OSError) -> trio.ClosedResourceError | trio.BrokenResourceError:
    if error.errno in _CLOSED_ERRNOS:
        return trio.ClosedResourceError("the stream was closed")
    return trio.BrokenResourceError(f"socket connection broken: {error}")


class LeanSocketStream(trio.abc.HalfCloseableStream, PeekableStream):
    """A connected stream socket as a trio stream, with as little per call as can be.

    Takes ownership of ``sock``: makes it non-blocking and sets TCP_NODELAY on TCP.
    """

    __slots__ = ("_eof_sent", "_sending", "socket")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket = sock
        self._sending = False  # a send-side call is in progress (trio's conflict detector)
        self._eof_sent = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send every byte of ``data``, waiting for buffer space only when the kernel has none."""
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        if self._eof_sent:
            raise trio.ClosedResourceError("can't send data after sending EOF")
        self._sending = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            sock = self.socket
            if sock.fileno() < 0:
                raise trio.ClosedResourceError("the stream was closed")
            waited = False
            view = memoryview(data)
            total = len(view)
            sent = 0
            while sent < total:
                try:
                    sent += sock.send(view[sent:] if sent else view)
                except BlockingIOError:
                    waited = True
                    await trio.lowlevel.wait_writable(sock)
                except OSError as error:
                    raise _stream_error(error) from error
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the socket can take more bytes."""
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        if self.socket.fileno() < 0:
            raise trio.ClosedResourceError("the stream was closed")
        self._sending = True
        try:
            await trio.lowlevel.wait_writable(self.socket)
        finally:
            self._sending = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return up to ``max_bytes`` bytes (b"" at the end of the stream), waiting for some."""
        if max_bytes is None:
            max_bytes = _DEFAULT_READ
        elif max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        await trio.lowlevel.checkpoint_if_cancelled()
        sock = self.socket
        try:
            data = sock.recv(max_bytes)
        except BlockingIOError:
            pass
        except OSError as error:
            raise _stream_error(error) from error
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        while True:
            await trio.lowlevel.wait_readable(sock)
            try:
                return sock.recv(max_bytes)
            except BlockingIOError:
                continue  # a spurious wakeup: wait again
            except OSError as error:
                raise _stream_error(error) from error

    async def send_eof(self) -> None:
        """Shut down the sending side (the peer reads end-of-stream); again is a no-op."""
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            await trio.lowlevel.checkpoint()
            if self._eof_sent:
                return
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError as error:
                raise _stream_error(error) from error
            self._eof_sent = True
        finally:
            self._sending = False

    def close(self) -> None:
        """Close the socket now (idempotent); a task waiting on it gets ``ClosedResourceError``."""
        sock = self.socket
        if sock.fileno() >= 0:
            trio.lowlevel.notify_closing(sock)
            sock.close()

    async def aclose(self) -> None:
        """Close the socket (see :meth:`close`), then checkpoint; it is closed even if cancelled."""
        self.close()
        await trio.lowlevel.checkpoint()

    def readable_now(self) -> bool:
        """Tell whether a read would return at once: bytes, end-of-stream, a reset, or closed.

        A zero-timeout poll: nothing is read and nothing waits.
        """
        fd = self.socket.fileno()
        if fd < 0:
            return True  # closed
        poller = _PER_THREAD.__dict__.get("poll")
        if poller is None:
            poller = _PER_THREAD.poll = select.poll()
        poller.register(fd, select.POLLIN)
        try:
            return bool(poller.poll(0))  # POLLIN, or POLLHUP/POLLERR, which poll always reports
        finally:
            poller.unregister(fd)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


async def open_tcp_stream(endpoint: Endpoint) -> LeanSocketStream:
    """Open a TCP connection to ``endpoint`` (an IP address).

    Raises :class:`OSError` when the connection cannot be made.
    """
    sock = socket.socket(_family(endpoint.host), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        code = sock.connect_ex((endpoint.host, endpoint.port))
        if code == errno.EINPROGRESS:
            await trio.lowlevel.wait_writable(sock)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        else:
            await trio.lowlevel.checkpoint()
        if code:
            raise OSError(code, f"connect to {endpoint}: {errno.errorcode.get(code, code)}")
    except BaseException:
        sock.close()
        raise
    return LeanSocketStream(sock)


async def serve_tcp(
    endpoint: Endpoint,
    handler: Callable[[LeanSocketStream], Awaitable[None]],
    *,
    task_status: trio.TaskStatus[Endpoint] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``endpoint`` (an IP address) and run ``handler`` in a task per connection.

    Reports the bound address (port 0 resolved) through ``task_status.started``; each stream
    is closed when its handler returns, as :func:`trio.serve_listeners` does.
    """
    with socket.create_server(
        (endpoint.host, endpoint.port), family=_family(endpoint.host), backlog=_BACKLOG
    ) as listener:
        listener.setblocking(False)
        host, port = listener.getsockname()[:2]
        async with trio.open_nursery() as nursery:
            task_status.started(Endpoint(host, port))
            while True:
                await trio.lowlevel.wait_readable(listener)
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    continue
                except OSError as error:
                    if error.errno in _IGNORED_ACCEPT_ERRNOS:
                        continue
                    if error.errno in _CAPACITY_ACCEPT_ERRNOS:
                        await trio.sleep(_CAPACITY_PAUSE_S)
                        continue
                    raise
                nursery.start_soon(_run_handler, handler, LeanSocketStream(sock))


async def _run_handler(
    handler: Callable[[LeanSocketStream], Awaitable[None]], stream: LeanSocketStream
) -> None:
    try:
        await handler(stream)
    finally:
        await trio.aclose_forcefully(stream)
