"""Keep-alive connection pools to upstream endpoints.

An idle connection is watched by a small task that waits for the peer to speak: an idle
HTTP/1.1 server only speaks to close, so whatever arrives (EOF, a reset, stray bytes) means the
connection is dead and it is dropped before anyone reuses it. Without the watcher, the first
request after an upstream restart would fail on a stale connection, a failure production
proxies do not show. The same task closes connections idle for longer than the idle timeout
(Istio's ``connectionPool.http.idleTimeout``, 1 h by default).
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field

import trio

from meshcore.model import Endpoint, Request, Response
from meshcore.transport.http1 import ClientConnection
from meshcore.transport.network import Network

__all__ = ["DEFAULT_IDLE_TIMEOUT_S", "UpstreamPool"]

DEFAULT_IDLE_TIMEOUT_S = 3600.0


@dataclass(eq=False)
class _Idle:
    conn: ClientConnection
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    watcher_done: trio.Event = field(default_factory=trio.Event)
    alive: bool = True


class UpstreamPool:
    """Connections to every upstream endpoint of one sidecar direction.

    ``nursery`` hosts the idle watchers; it must outlive the pool's use.
    """

    def __init__(
        self,
        network: Network,
        nursery: trio.Nursery,
        *,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    ) -> None:
        self._network = network
        self._nursery = nursery
        self._idle_timeout_s = idle_timeout_s
        self._idle: defaultdict[Endpoint, deque[_Idle]] = defaultdict(deque)
        self.connections_opened = 0

    async def round_trip(self, endpoint: Endpoint, request: Request) -> Response:
        """Send ``request`` to ``endpoint`` on a pooled or new connection.

        Raises :class:`~meshcore.errors.ConnectFailure` or
        :class:`~meshcore.errors.UpstreamReset`; a cancelled exchange closes its connection.
        """
        conn = await self._acquire(endpoint)
        try:
            response = await conn.round_trip(request, host=request.destination or str(endpoint))
        except BaseException:
            await trio.aclose_forcefully(conn.stream)
            raise
        if conn.reusable:
            self._release(endpoint, conn)
        else:
            await trio.aclose_forcefully(conn.stream)
        return response.replace(upstream=str(endpoint))

    async def _acquire(self, endpoint: Endpoint) -> ClientConnection:
        idle = self._idle[endpoint]
        while idle:
            entry = idle.pop()  # most recently used first: warm, least likely to be stale
            entry.scope.cancel()
            await entry.watcher_done.wait()
            if entry.alive:
                return entry.conn
        stream = await self._network.connect(endpoint)
        self.connections_opened += 1
        return ClientConnection(stream)

    def _release(self, endpoint: Endpoint, conn: ClientConnection) -> None:
        entry = _Idle(conn)
        self._idle[endpoint].append(entry)
        self._nursery.start_soon(self._watch, endpoint, entry)

    async def _watch(self, endpoint: Endpoint, entry: _Idle) -> None:
        try:
            with entry.scope:
                with trio.move_on_after(self._idle_timeout_s):
                    await entry.conn.stream.receive_some(1)
                # The peer spoke (it closed) or the idle timeout passed: drop the connection.
                self._forget(endpoint, entry)
                await trio.aclose_forcefully(entry.conn.stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._forget(endpoint, entry)
        finally:
            entry.watcher_done.set()

    def _forget(self, endpoint: Endpoint, entry: _Idle) -> None:
        entry.alive = False
        if entry in self._idle[endpoint]:
            self._idle[endpoint].remove(entry)

    async def aclose(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            while idle:
                entry = idle.pop()
                entry.scope.cancel()
                await trio.aclose_forcefully(entry.conn.stream)
