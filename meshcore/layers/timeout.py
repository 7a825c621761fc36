"""The route timeout: one deadline over every try and back-off of a request.

Istio's ``timeout`` (no default: unset means none). When it passes, whatever try is in flight
is cancelled and the caller gets Envoy's answer, 504 ``upstream request timeout`` with flag
``UT``, counted ``upstream_rq_timeout``.
"""

from __future__ import annotations

from collections.abc import Mapping

import trio

from meshcore.layers.base import Service
from meshcore.layers.retry import Count
from meshcore.model import Request, Response
from meshcore.units import format_duration

__all__ = ["TimeoutLayer"]


class TimeoutLayer:
    """Answers 504 ``UT`` when a request's destination timeout passes."""

    def __init__(self, inner: Service, timeouts: Mapping[str, float | None], count: Count):
        self.inner = inner
        self._timeouts = timeouts
        self._count = count

    async def __call__(self, request: Request) -> Response:
        """Pass ``request`` on under its destination's deadline, if it has one."""
        timeout_s = self._timeouts.get(request.destination)
        if timeout_s is None:
            return await self.inner(request)
        with trio.move_on_after(timeout_s):
            return await self.inner(request)
        self._count(request.destination, "upstream_rq_timeout")
        trace = request.trace
        if trace is not None and trace.current is not None:
            reason = f"route timeout {format_duration(timeout_s)} expired"
            record = trace.current
            if record.outcome:  # cut short during the back-off before the next try
                record.decision += f"; {reason} during the back-off"
            else:
                trace.finish_open("cancelled", f"no retry: {reason}", trio.current_time())
        return Response.local(504, "upstream request timeout\n", "UT")
