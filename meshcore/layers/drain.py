"""The drain layer: counts requests in flight, so that a shutdown can wait for them.

It sits outermost in both stacks. A sidecar asked to stop (SIGINT, SIGTERM) waits until
:meth:`InFlight.wait_idle` returns, for at most its drain time, before it cancels anything.
"""

from __future__ import annotations

import trio

from meshcore.layers.base import Service
from meshcore.model import Request, Response

__all__ = ["DrainLayer", "InFlight"]


class InFlight:
    """The number of requests in flight through one sidecar, and a way to wait for none."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = trio.Event()
        self._idle.set()

    def started(self) -> None:
        """Count one more request."""
        if self.count == 0:
            self._idle = trio.Event()
        self.count += 1

    def ended(self) -> None:
        """Count one fewer request."""
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no request is in flight."""
        await self._idle.wait()


class DrainLayer:
    """Counts every request through it in ``in_flight``."""

    def __init__(self, inner: Service, in_flight: InFlight) -> None:
        self.inner = inner
        self._in_flight = in_flight

    async def __call__(self, request: Request) -> Response:
        """Pass ``request`` on, counted."""
        self._in_flight.started()
        try:
            return await self.inner(request)
        finally:
            self._in_flight.ended()
