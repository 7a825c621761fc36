"""An in-memory network: the same two methods as TCP, over ``trio.testing`` memory streams.

Under ``trio.testing.MockClock`` this is what lets a whole mesh run in virtual time: no byte
leaves the process and no wall clock is consulted. A listener is a name in a table; a
connection is a ``memory_stream_pair`` whose server end is handed to the listener's handler
in the listener's own nursery (so a stopped listener takes its connections with it).
"""

from __future__ import annotations

from dataclasses import dataclass

import trio
import trio.testing

from meshcore.errors import ConnectFailure
from meshcore.model import Endpoint
from meshcore.transport.network import ConnectionHandler

__all__ = ["MemoryNetwork"]


@dataclass(frozen=True, slots=True)
class _Listener:
    handler: ConnectionHandler
    nursery: trio.Nursery


class MemoryNetwork:
    """Listeners and connections inside one process; ports are handed out from 20000 up."""

    def __init__(self) -> None:
        self._listeners: dict[Endpoint, _Listener] = {}
        self._next_port = 20000

    async def connect(self, endpoint: Endpoint) -> trio.abc.Stream:
        """Connect to a listener, or fail like a refused TCP connection."""
        await trio.lowlevel.checkpoint()
        listener = self._listeners.get(endpoint)
        if listener is None:
            raise ConnectFailure(f"connect to {endpoint} failed: connection refused")
        client, server = trio.testing.memory_stream_pair()
        listener.nursery.start_soon(listener.handler, server)
        return client

    def allocate(self, host: str, count: int) -> list[Endpoint]:
        """Return ``count`` endpoints on ``host`` that no listener uses."""
        endpoints: list[Endpoint] = []
        while len(endpoints) < count:
            endpoint = Endpoint(host, self._next_port)
            self._next_port += 1
            if endpoint not in self._listeners:
                endpoints.append(endpoint)
        return endpoints

    async def serve(
        self,
        endpoint: Endpoint,
        handler: ConnectionHandler,
        *,
        task_status: trio.TaskStatus[Endpoint] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections on ``endpoint`` (port 0 picks a free one) until cancelled."""
        if endpoint.port == 0:
            [endpoint] = self.allocate(endpoint.host, 1)
        if endpoint in self._listeners:
            raise OSError(f"address already in use: {endpoint}")
        try:
            async with trio.open_nursery() as nursery:
                self._listeners[endpoint] = _Listener(handler, nursery)
                task_status.started(endpoint)
                await trio.sleep_forever()
        finally:
            del self._listeners[endpoint]
