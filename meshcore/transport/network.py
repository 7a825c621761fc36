"""Where bytes come from: the one seam between meshcore and the operating system's sockets.

Nothing else in meshcore or harness opens a socket. Real mode uses :class:`TcpNetwork`
(loopback only); simulate mode will pass an in-memory network with the same two methods, so
that every layer above runs unchanged over ``trio.testing.memory_stream_pair``.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from meshcore.errors import ConnectFailure
from meshcore.model import Endpoint

__all__ = ["ConnectionHandler", "Network", "TcpNetwork"]

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


class TcpNetwork:
    """The real network: TCP on the loopback interface."""

    async def connect(self, endpoint: Endpoint) -> trio.abc.Stream:
        """Open a TCP connection (TCP_NODELAY is set by trio)."""
        try:
            return await trio.open_tcp_stream(endpoint.host, endpoint.port)
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
        """Listen on ``endpoint`` and run ``handler`` for every accepted connection."""
        listeners = await trio.open_tcp_listeners(endpoint.port, host=endpoint.host)
        host, port = listeners[0].socket.getsockname()[:2]
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, handler, listeners)
            task_status.started(Endpoint(host, port))
