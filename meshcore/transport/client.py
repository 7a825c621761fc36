"""Control-plane HTTP requests over a :class:`~meshcore.transport.network.Network`.

- :func:`request_once`: a fresh connection per request, for one-off calls (readiness probes,
  collecting statistics) where a connect costs nothing that matters.
- :class:`ControlClient`: kept-alive connections per endpoint, for calls whose timing matters:
  the fault schedule's, which must take effect one hop after their time, as configuration
  pushed over Istio's long-lived xDS stream does, not a connect round trip later.
"""

from __future__ import annotations

from collections import defaultdict

import trio

from meshcore.errors import UpstreamError
from meshcore.model import Endpoint, Request, Response
from meshcore.transport.http1 import ClientConnection
from meshcore.transport.network import Network

__all__ = ["ControlClient", "request_once"]


async def request_once(network: Network, endpoint: Endpoint, request: Request) -> Response:
    """Open a connection to ``endpoint``, exchange ``request``, close; raise UpstreamError."""
    conn = ClientConnection(await network.connect(endpoint))
    try:
        return await conn.round_trip(request, host=str(endpoint))
    finally:
        await conn.aclose()


class ControlClient(trio.abc.AsyncResource):
    """Sends control-plane requests over kept-alive connections, per endpoint.

    A request takes an idle connection to its endpoint, or opens one when none is idle, so
    concurrent requests to one endpoint each get their own connection and need no lock; after
    the response, a reusable connection goes back to the endpoint's idle list.

    A request that fails with :class:`~meshcore.errors.UpstreamError` on a *reused* connection
    (the server restarted, or closed the idle connection) is sent once more on a fresh one:
    the connection is closed and the request may have been applied or not. That is safe only
    for idempotent requests, which the admin calls it carries are: ``POST /faults`` replaces
    the rule of the same name and ``DELETE /faults/NAME`` removes it. A failure on a fresh
    connection (:class:`~meshcore.errors.ConnectFailure`, a reset) propagates.

    No task watches the idle connections: :meth:`aclose` closes them. ``connections_opened``
    counts the connections made, for tests and diagnostics.
    """

    def __init__(self, network: Network) -> None:
        self._network = network
        self._idle: defaultdict[Endpoint, list[ClientConnection]] = defaultdict(list)
        self.connections_opened = 0

    async def connect(self, endpoint: Endpoint) -> None:
        """Open a connection to ``endpoint`` ahead of its first request and keep it idle."""
        self._idle[endpoint].append(await self._open(endpoint))

    async def round_trip(self, endpoint: Endpoint, request: Request) -> Response:
        """Send ``request`` to ``endpoint`` on an idle or new connection and return the response.

        Raises :class:`~meshcore.errors.UpstreamError` when the request fails on a fresh
        connection (see the class's docstring for the one retry on a reused connection).
        """
        idle = self._idle.get(endpoint)
        if idle:
            try:
                return await self._exchange(endpoint, idle.pop(), request)
            except UpstreamError:
                pass  # a stale connection: try once more on a fresh one
        return await self._exchange(endpoint, await self._open(endpoint), request)

    async def aclose(self) -> None:
        """Close every idle connection."""
        idle = [conn for conns in self._idle.values() for conn in conns]
        self._idle.clear()
        for conn in idle:
            await trio.aclose_forcefully(conn.stream)

    async def _open(self, endpoint: Endpoint) -> ClientConnection:
        conn = ClientConnection(await self._network.connect(endpoint))
        self.connections_opened += 1
        return conn

    async def _exchange(
        self, endpoint: Endpoint, conn: ClientConnection, request: Request
    ) -> Response:
        try:
            response = await conn.round_trip(request, host=str(endpoint))
        except BaseException:
            # Failed or cancelled half way: the connection's state is unknown.
            await trio.aclose_forcefully(conn.stream)
            raise
        if conn.reusable:
            self._idle[endpoint].append(conn)
        else:
            await trio.aclose_forcefully(conn.stream)
        return response
