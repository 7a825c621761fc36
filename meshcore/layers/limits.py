"""The connection-pool limits layer: queue a try for a connection, or answer 503 ``UO``.

The decisions are :class:`~meshcore.policy.limits.PoolLimits`'s; this layer only waits for
the ticket it is given and hands freed connections on. An overflow is answered at once with
Envoy's text and flag ``UO``, which the retry layer never retries.
"""

from __future__ import annotations

from collections.abc import Mapping

import trio

from meshcore.layers.base import Service
from meshcore.layers.retry import Count
from meshcore.model import Request, Response
from meshcore.policy.limits import PoolLimits

__all__ = ["LimitsLayer"]


class LimitsLayer:
    """Applies each destination's ``connectionPool`` limits (destinations without any pass)."""

    def __init__(self, inner: Service, limits: Mapping[str, PoolLimits], count: Count) -> None:
        self.inner = inner
        self._limits = limits
        self._count = count
        self._waiting: dict[tuple[str, int], trio.Event] = {}

    async def __call__(self, request: Request) -> Response:
        """Send ``request`` once a connection is free, or refuse it."""
        destination = request.destination
        limits = self._limits.get(destination)
        if limits is None:
            return await self.inner(request)
        ticket = limits.admit()
        if ticket >= 0 or ticket == PoolLimits.OVERFLOW_PENDING:
            self._count(destination, "upstream_cx_overflow")  # every connection was busy
        if ticket in (PoolLimits.OVERFLOW_PENDING, PoolLimits.OVERFLOW_REQUESTS):
            self._count(destination, "upstream_rq_pending_overflow")
            return Response.local(
                503,
                "upstream connect error or disconnect/reset before headers. "
                "reset reason: overflow\n",
                "UO",
            )
        if ticket >= 0:
            await self._wait(limits, destination, ticket)
        try:
            return await self.inner(request)
        finally:
            self._release(limits, destination)

    async def _wait(self, limits: PoolLimits, destination: str, ticket: int) -> None:
        key = (destination, ticket)
        event = self._waiting[key] = trio.Event()
        try:
            await event.wait()
        except BaseException:
            if self._waiting.pop(key, None) is not None:
                limits.abandon(ticket)  # still queued: just leave the queue
            else:
                self._release(limits, destination)  # granted as we were cancelled: pass it on
            raise

    def _release(self, limits: PoolLimits, destination: str) -> None:
        woken = limits.release()
        if woken is not None:
            self._waiting.pop((destination, woken)).set()
