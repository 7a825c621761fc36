"""Where bytes come from: the one seam between meshcore and the operating system's sockets.

Nothing else in meshcore or harness opens a socket: real mode uses :class:`TcpNetwork`
(loopback only; its sockets are in :mod:`meshcore.transport.leansocket`), simulate mode an
in-memory network with the same methods, so every layer above runs unchanged on either.

:func:`readable_now` looks at a stream without reading it: the connection pool uses it to
tell a dead idle connection from a live one (see :mod:`meshcore.transport.pool`).
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

import trio

from meshcore.errors import ConnectFailure
from meshcore.model import Endpoint
from meshcore.transport.leansocket import open_tcp_stream, serve_tcp
from meshcore.transport.peekable import PeekableStream

__all__ = ["ConnectionHandler", "Network", "PeekableStream", "TcpNetwork", "readable_now"]

ConnectionHandler = Callable[[trio.abc.Stream], Awaitable[None]]


class Network(Protocol):
    """Opens connections and serves listeners, over TCP or in memory."""

    async def connect(self, endpoint: Endpoint) -> trio.abc.Stream:
        """Open a byte stream to ``endpoint``; raise :class:`ConnectFailure` if that fails."""
        ...

    async def serve(
        self,
        endpoint: Endpoint,
        handler: ConnectionHandler,
        *,
        task_status: trio.TaskStatus[Endpoint] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections on ``endpoint`` forever, one ``handler`` task each.

        Reports the bound address (port 0 resolved) through ``task_status.started``.
        """
        ...

    def allocate(self, host: str, count: int) -> list[Endpoint]:
        """Return ``count`` distinct endpoints on ``host`` that are free to listen on now."""
        ...


def readable_now(stream: trio.abc.Stream) -> bool:
    """Tell whether a read on ``stream`` would return at once, without reading or blocking.

    Bytes, an end-of-stream, a reset and a closed stream all count. On an idle HTTP/1.1
    client connection any of them means the connection is dead: an idle server only speaks
    to close. A TLS stream counts what it has decrypted and not handed out, then its
    transport (the mesh's servers send no session tickets, so nothing legitimate arrives on
    an idle TLS connection). A stream of an unknown kind says ``False``: it cannot tell.
    """
    kind = type(stream)
    peekable = _PEEKABLE.get(kind)
    if peekable is None:
        peekable = _PEEKABLE[kind] = issubclass(kind, PeekableStream)
    if peekable:
        return cast(PeekableStream, stream).readable_now()
    return False


# Whether each stream class is a PeekableStream: asked before every reuse of a pooled
# connection, once per wrapper (TLS, faults, socket), where an ABC's isinstance is slow.
_PEEKABLE: dict[type, bool] = {}


class TcpNetwork:
    """The real network: TCP on the loopback interface, over :class:`LeanSocketStream`.

    Both ends of every connection, accepted or opened, are
    :class:`~meshcore.transport.leansocket.LeanSocketStream`: trio's stream contract over a
    plain non-blocking socket, cheaper per call than :class:`trio.SocketStream`.
    """

    async def connect(self, endpoint: Endpoint) -> trio.abc.Stream:
        """Open a TCP connection to ``endpoint`` (an IP address), TCP_NODELAY set."""
        try:
            return await open_tcp_stream(endpoint)
        except OSError as error:
            raise ConnectFailure(f"connect to {endpoint} failed: {error}") from error

    def allocate(self, host: str, count: int) -> list[Endpoint]:
        """Ask the kernel for ``count`` free ports (held together, so they are distinct).

        A port is free when this returns; another program could take it before the process
        meant to listen on it does, which on a developer's loopback is rare enough.
        """
        sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
        try:
            for sock in sockets:
                sock.bind((host, 0))
            return [Endpoint(host, sock.getsockname()[1]) for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()

    async def serve(
        self,
        endpoint: Endpoint,
        handler: ConnectionHandler,
        *,
        task_status: trio.TaskStatus[Endpoint] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``endpoint`` (an IP address) and run ``handler`` for every connection."""
        await serve_tcp(endpoint, handler, task_status=task_status)
