"""Connection-pool limits (Istio ``connectionPool``): admit a try, queue it, or overflow.

Theory of operation, for HTTP/1.1 upstreams where one connection carries one request at a
time, per destination:

- a try that finds ``http2MaxRequests`` tries already active overflows;
- otherwise it becomes active at once while fewer than ``tcp.maxConnections`` tries are
  active (each holds a connection);
- otherwise it waits in a FIFO queue for a connection, unless ``http1MaxPendingRequests``
  tries already wait, in which case it overflows.

An overflow is answered at once with 503 ``UO`` and counted ``upstream_rq_pending_overflow``
(Envoy counts both overflows there); a try that has to queue because every connection is busy
is counted ``upstream_cx_overflow``. Every limit is unlimited by default, as in Istio.

The queue is sans-IO: :meth:`PoolLimits.admit` hands out a ticket for a queued try, and
:meth:`PoolLimits.release` says which ticket (if any) takes the freed connection. The Trio
layer maps tickets to events.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["ConnectionPoolSettings", "PoolLimits", "PoolLimitsStats"]


@dataclass(frozen=True, slots=True)
class ConnectionPoolSettings:
    """Istio's ``connectionPool`` (``None``: unlimited, as Istio's 2^32-1 defaults)."""

    max_connections: int | None = None  # tcp.maxConnections
    http1_max_pending_requests: int | None = None
    http2_max_requests: int | None = None
    max_retries: int | None = None  # concurrent retries; see RetryAdmission
    max_requests_per_connection: int | None = None  # None or 0: unlimited
    idle_timeout_s: float = 3600.0  # http.idleTimeout, Istio's default 1 h

    @property
    def limits_requests(self) -> bool:
        """Tell whether any per-try limit is set (else the limits layer has nothing to do)."""
        return (
            self.max_connections is not None
            or self.http1_max_pending_requests is not None
            or self.http2_max_requests is not None
        )


@dataclass(frozen=True, slots=True)
class PoolLimitsStats:
    """A snapshot of one destination's pool limits."""

    active: int
    pending: int


class PoolLimits:
    """Admission of tries to one destination's connection pool."""

    ADMITTED = -1
    OVERFLOW_REQUESTS = -2  # http2MaxRequests tries already active
    OVERFLOW_PENDING = -3  # every connection busy and http1MaxPendingRequests tries waiting

    def __init__(self, settings: ConnectionPoolSettings) -> None:
        self._settings = settings
        self.active = 0
        self._queue: deque[int] = deque()
        self._next_ticket = 0

    @property
    def pending(self) -> int:
        """Return how many tries wait for a connection."""
        return len(self._queue)

    def admit(self) -> int:
        """Return ``ADMITTED``, an ``OVERFLOW_*`` code, or a ticket (>= 0) for a try to queue."""
        settings = self._settings
        if settings.http2_max_requests is not None and self.active >= settings.http2_max_requests:
            return self.OVERFLOW_REQUESTS
        if settings.max_connections is None or self.active < settings.max_connections:
            self.active += 1
            return self.ADMITTED
        maximum = settings.http1_max_pending_requests
        if maximum is not None and len(self._queue) >= maximum:
            return self.OVERFLOW_PENDING
        ticket = self._next_ticket
        self._next_ticket += 1
        self._queue.append(ticket)
        return ticket

    def release(self) -> int | None:
        """Release an active try's connection; return the ticket that now takes it, if any."""
        if self._queue:
            return self._queue.popleft()  # the freed connection passes on: active stays
        self.active -= 1
        return None

    def abandon(self, ticket: int) -> None:
        """Remove a waiting ticket whose try gave up (cancelled) before it got a connection."""
        self._queue.remove(ticket)

    def statistics(self) -> PoolLimitsStats:
        """Return the active and pending counts."""
        return PoolLimitsStats(self.active, len(self._queue))
