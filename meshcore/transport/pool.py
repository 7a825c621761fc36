"""Keep-alive connection pools to upstream endpoints.

An idle connection is watched by a small task that waits for the peer to speak: an idle
HTTP/1.1 server only speaks to close, so whatever arrives (EOF, a reset, stray bytes) means the
connection is dead and it is dropped before anyone reuses it. Without the watcher, the first
request after an upstream restart would fail on a stale connection, a failure production
proxies do not show. The same task closes connections idle for longer than the idle timeout
(Istio's ``connectionPool.http.idleTimeout``, 1 h by default).

Per destination (``request.destination``), :meth:`UpstreamPool.configure` sets Istio's
``idleTimeout``, ``maxRequestsPerConnection`` (a connection is closed after that many
requests) and ``tcp.maxConnections``: opening a connection beyond it first closes the
destination's longest-idle connection. Tries beyond ``maxConnections`` in flight never reach
the pool: the limits layer queues or refuses them.

Connections speak HTTP/1.1 through the llhttp codec (:mod:`meshcore.transport.llhttp`).
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import trio

from meshcore.model import Endpoint, Request, Response
from meshcore.policy.limits import ConnectionPoolSettings
from meshcore.transport.codec import HttpConnection
from meshcore.transport.llhttp import LlhttpClientConnection
from meshcore.transport.network import Network

__all__ = ["DEFAULT_IDLE_TIMEOUT_S", "UpstreamPool"]

DEFAULT_IDLE_TIMEOUT_S = 3600.0
_DEFAULTS = ConnectionPoolSettings()


@dataclass(eq=False)
class _Idle:
    conn: HttpConnection
    group: str
    idle_timeout_s: float
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
        self._settings: Mapping[str, ConnectionPoolSettings] = {}
        self._uses: dict[HttpConnection, int] = {}  # requests sent, per open connection
        self._groups: dict[HttpConnection, str] = {}  # the destination that opened it
        self._open: Counter[str] = Counter()  # open connections per destination
        self.connections_opened = 0

    def configure(self, settings: Mapping[str, ConnectionPoolSettings]) -> None:
        """Set the connection settings of each destination (others keep the defaults)."""
        self._settings = settings

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn`` in the background, in the nursery that outlives the pool's use.

        Fire-and-forget exchanges (mirrored requests) run here, like the idle watchers.
        """
        self._nursery.start_soon(fn)

    async def round_trip(self, endpoint: Endpoint, request: Request) -> Response:
        """Send ``request`` to ``endpoint`` on a pooled or new connection.

        Raises :class:`~meshcore.errors.ConnectFailure` or
        :class:`~meshcore.errors.UpstreamReset`; a cancelled exchange closes its connection.
        """
        settings = self._settings.get(request.destination, _DEFAULTS)
        conn = await self._acquire(endpoint, request.destination, settings)
        try:
            response = await conn.round_trip(request, host=request.destination or str(endpoint))
        except BaseException:
            await self._close(conn)
            raise
        uses = self._uses[conn] = self._uses[conn] + 1
        limit = settings.max_requests_per_connection
        if conn.reusable and (limit is None or uses < limit):
            self._release(endpoint, conn, settings)
        else:
            await self._close(conn)
        return response.replace(upstream=str(endpoint))

    async def _acquire(
        self, endpoint: Endpoint, group: str, settings: ConnectionPoolSettings
    ) -> HttpConnection:
        idle = self._idle[endpoint]
        while idle:
            entry = idle.pop()  # most recently used first: warm, least likely to be stale
            entry.scope.cancel()
            await entry.watcher_done.wait()
            if entry.alive:
                return entry.conn
        cap = settings.max_connections
        if cap is not None and self._open[group] >= cap:
            await self._close_longest_idle(group)
        stream = await self._network.connect(endpoint)
        self.connections_opened += 1
        conn = LlhttpClientConnection(stream)
        self._uses[conn] = 0
        self._groups[conn] = group
        self._open[group] += 1
        return conn

    async def _close_longest_idle(self, group: str) -> None:
        candidates = [(ep, entry) for ep, idle in self._idle.items() for entry in idle
                      if entry.group == group]  # fmt: skip
        if candidates:
            endpoint, entry = candidates[0]
            self._forget(endpoint, entry)
            entry.scope.cancel()
            await entry.watcher_done.wait()
            await self._close(entry.conn)

    async def _close(self, conn: HttpConnection) -> None:
        if self._uses.pop(conn, None) is not None:
            self._open[self._groups.pop(conn)] -= 1
        await trio.aclose_forcefully(conn.stream)

    def _release(
        self, endpoint: Endpoint, conn: HttpConnection, settings: ConnectionPoolSettings
    ) -> None:
        entry = _Idle(conn, self._groups[conn], settings.idle_timeout_s)
        self._idle[endpoint].append(entry)
        self._nursery.start_soon(self._watch, endpoint, entry)

    async def _watch(self, endpoint: Endpoint, entry: _Idle) -> None:
        try:
            with entry.scope:
                with trio.move_on_after(min(entry.idle_timeout_s, self._idle_timeout_s)):
                    await entry.conn.stream.receive_some(1)
                # The peer spoke (it closed) or the idle timeout passed: drop the connection.
                self._forget(endpoint, entry)
                await self._close(entry.conn)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._forget(endpoint, entry)
            await self._close(entry.conn)
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
                await self._close(entry.conn)
