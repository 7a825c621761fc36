"""Keep-alive connection pools to upstream endpoints.

Theory of operation. A released connection goes, with the instant its idle timeout expires
(Istio's ``connectionPool.http.idleTimeout``, 1 h by default), to the end of its endpoint's
idle list; no task watches it. Reuse takes the most recently released one (warm, least likely
to be stale) and first looks at it without reading (:func:`~meshcore.transport.network.
readable_now`): an idle HTTP/1.1 server only speaks to close, so anything readable (EOF, a
reset, stray bytes) means the connection is dead, and it is closed and the next one tried. A
connection past its idle timeout is closed too. Without that look, the first request after an
upstream restart would fail on a stale connection, a failure production proxies do not show.

One sweeper task per pool closes the connections whose idle timeout passed, at that instant:
it sleeps in a cancel scope whose deadline is the earliest expiry, lowered when a release
brings an earlier one. A connection the peer closed while idle is noticed at its next reuse
or when its idle timeout sweeps it, whichever comes first; until then it holds a descriptor.

Per destination (``request.destination``), :meth:`UpstreamPool.configure` sets Istio's
``idleTimeout``, ``maxRequestsPerConnection`` (a connection is closed after that many
requests) and ``tcp.maxConnections``: opening a connection beyond it first closes the
destination's longest-idle connection. Tries beyond ``maxConnections`` in flight never reach
the pool: the limits layer queues or refuses them.

Connections speak HTTP/1.1 through the llhttp codec (:mod:`meshcore.transport.llhttp`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import trio

from meshcore.model import Endpoint, Request, Response
from meshcore.policy.limits import ConnectionPoolSettings
from meshcore.transport.codec import HttpConnection
from meshcore.transport.llhttp import LlhttpClientConnection
from meshcore.transport.network import Network, readable_now

__all__ = ["DEFAULT_IDLE_TIMEOUT_S", "UpstreamPool"]

DEFAULT_IDLE_TIMEOUT_S = 3600.0
_DEFAULTS = ConnectionPoolSettings()


@dataclass(eq=False, slots=True)
class _Idle:
    conn: HttpConnection
    group: str
    expires: float  # when its idle timeout passes


class UpstreamPool:
    """Connections to every upstream endpoint of one sidecar direction.

    ``nursery`` hosts the idle sweeper and fire-and-forget exchanges; it must outlive the
    pool's use.
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
        self._sweep_scope: trio.CancelScope | None = None  # the sleeping sweeper's, once started
        self.connections_opened = 0

    def configure(self, settings: Mapping[str, ConnectionPoolSettings]) -> None:
        """Set the connection settings of each destination (others keep the defaults)."""
        self._settings = settings

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn`` in the background, in the nursery that outlives the pool's use.

        Fire-and-forget exchanges (mirrored requests) run here.
        """
        self._nursery.start_soon(fn)

    async def round_trip(self, endpoint: Endpoint, request: Request) -> Response:
        """Send ``request`` to ``endpoint`` on a pooled or new connection.

        Raises :class:`~meshcore.errors.ConnectFailure` or
        :class:`~meshcore.errors.UpstreamReset`; a cancelled exchange closes its connection.
        The response's ``upstream`` is ``endpoint``.
        """
        destination = request.destination
        settings = self._settings.get(destination, _DEFAULTS)
        conn = await self._acquire(endpoint, destination, settings)
        upstream = str(endpoint)
        try:
            response = await conn.round_trip(request, host=destination or upstream)
        except BaseException:
            await self._close(conn)
            raise
        uses = self._uses[conn] = self._uses[conn] + 1
        limit = settings.max_requests_per_connection
        if conn.reusable and (limit is None or uses < limit):
            self._release(endpoint, conn, settings)
        else:
            await self._close(conn)
        return response.replace(upstream=upstream)

    async def _acquire(
        self, endpoint: Endpoint, group: str, settings: ConnectionPoolSettings
    ) -> HttpConnection:
        idle = self._idle.get(endpoint)
        if idle:
            now = trio.current_time()
            while idle:
                entry = idle.pop()  # most recently used first: warm, least likely to be stale
                if entry.expires > now and not readable_now(entry.conn.stream):
                    return entry.conn
                await self._close(entry.conn)  # the peer spoke (it closed), or idle too long
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
        candidates = [(idle, entry) for idle in self._idle.values() for entry in idle
                      if entry.group == group]  # fmt: skip
        if candidates:
            idle, entry = min(candidates, key=lambda candidate: candidate[1].expires)
            idle.remove(entry)
            await self._close(entry.conn)

    async def _close(self, conn: HttpConnection) -> None:
        if self._uses.pop(conn, None) is not None:
            self._open[self._groups.pop(conn)] -= 1
        await trio.aclose_forcefully(conn.stream)

    def _release(
        self, endpoint: Endpoint, conn: HttpConnection, settings: ConnectionPoolSettings
    ) -> None:
        timeout_s = min(settings.idle_timeout_s, self._idle_timeout_s)
        expires = trio.current_time() + timeout_s
        self._idle[endpoint].append(_Idle(conn, self._groups[conn], expires))
        scope = self._sweep_scope
        if scope is None:
            self._sweep_scope = trio.CancelScope(deadline=expires)
            self._nursery.start_soon(self._sweep)
        elif expires < scope.deadline:
            scope.deadline = expires

    async def _sweep(self) -> None:
        """Close idle connections as their idle timeouts pass, for the pool's life."""
        scope = self._sweep_scope
        assert scope is not None
        while True:
            with scope:
                await trio.sleep_forever()
            now = trio.current_time()
            expired: list[HttpConnection] = []
            earliest = math.inf
            for idle in self._idle.values():
                if idle and idle[0].expires <= now:
                    kept = [entry for entry in idle if entry.expires > now]
                    expired.extend(entry.conn for entry in idle if entry.expires <= now)
                    idle.clear()
                    idle.extend(kept)
                for entry in idle:
                    earliest = min(earliest, entry.expires)
            scope = self._sweep_scope = trio.CancelScope(deadline=earliest)
            for conn in expired:
                await self._close(conn)

    async def aclose(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            while idle:
                await self._close(idle.pop().conn)
