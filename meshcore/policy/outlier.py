"""Outlier detection (Istio ``outlierDetection``, Envoy's consecutive-errors detector).

Theory of operation. The detector belongs to one client sidecar and one destination, never
shared, so its arithmetic is what each Envoy would do. Every host is ``HEALTHY`` or ``EJECTED``:

- Each try's result is recorded against its host. A 5xx answer, or a try without an answer
  (connect failure, reset, timeout: "local origin" errors count as 5xx, as Istio configures
  Envoy), adds to the host's consecutive 5xx count; 502, 503, 504 and local-origin errors also
  add to its consecutive gateway-error count; any other answer resets both counts.
- When a count reaches its threshold (``consecutive5xxErrors``, default 5, and
  ``consecutiveGatewayErrors``, off by default; 0 disables either) the host is ejected at once,
  unless that would eject more than ``maxEjectionPercent`` of the hosts; at least one host
  may always be ejected. Its ejection count goes up by one.
- The detector sweeps every ``interval`` (10 s) from its creation. A sweep returns each host
  whose ejection has lasted ``baseEjectionTime x ejection count`` (capped at 300 s, Envoy's
  ``max_ejection_time``), so a host comes back at the first sweep after that; and, as Envoy
  does since 1.21, lowers the ejection count of a host that has been back for an interval.

Time is passed in: :meth:`advance` runs every sweep due by ``now`` (the aioquic way: no timer
of its own), so a sweep's result does not depend on when someone looks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from meshcore.model import Endpoint

__all__ = [
    "MAX_EJECTION_TIME_S",
    "TRANSITIONS",
    "HostState",
    "OutlierDetector",
    "OutlierSettings",
    "OutlierStats",
]

MAX_EJECTION_TIME_S = 300.0


class HostState(Enum):
    """Where one host stands."""

    HEALTHY = "healthy"
    EJECTED = "ejected"


# (state, event) -> next state. "threshold" is a count reaching its threshold while the
# ejection cap allows it; "capped" the same when the cap refuses; "expired" a sweep finding the
# ejection time over; "result" any recorded result that does not cross a threshold.
TRANSITIONS: dict[tuple[HostState, str], HostState] = {
    (HostState.HEALTHY, "result"): HostState.HEALTHY,
    (HostState.HEALTHY, "threshold"): HostState.EJECTED,
    (HostState.HEALTHY, "capped"): HostState.HEALTHY,
    (HostState.EJECTED, "result"): HostState.EJECTED,  # late answers of tries already sent
    (HostState.EJECTED, "expired"): HostState.HEALTHY,
}


@dataclass(frozen=True, slots=True)
class OutlierSettings:
    """Istio's ``outlierDetection`` with its defaults."""

    consecutive_5xx_errors: int = 5
    consecutive_gateway_errors: int = 0
    interval_s: float = 10.0
    base_ejection_time_s: float = 30.0
    max_ejection_percent: float = 10.0


@dataclass(slots=True)
class _Host:
    state: HostState = HostState.HEALTHY
    consecutive_5xx: int = 0
    consecutive_gateway: int = 0
    ejections: int = 0  # Envoy's ejection-time multiplier
    ejected_at: float = 0.0
    returned_at: float | None = None


@dataclass(frozen=True, slots=True)
class OutlierStats:
    """Envoy's ``outlier_detection.ejections_active`` and ``ejections_total``."""

    ejections_active: int
    ejections_total: int
    ejected: tuple[str, ...] = field(default_factory=tuple)


class OutlierDetector:
    """Ejects hosts of one destination that fail in a row, and returns them later."""

    def __init__(self, settings: OutlierSettings, hosts: Iterable[Endpoint], now: float) -> None:
        self.settings = settings
        self._hosts = {host: _Host() for host in hosts}
        self._next_sweep = now + settings.interval_s
        self.ejections_total = 0

    # --- time --------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Run every sweep due at or before ``now``, in order."""
        while self._next_sweep <= now:
            self._sweep(self._next_sweep)
            self._next_sweep += self.settings.interval_s

    def _sweep(self, at: float) -> None:
        for host in self._hosts.values():
            if host.state is HostState.EJECTED:
                if at >= host.ejected_at + self._ejection_time(host):
                    self._move(host, "expired")
                    host.returned_at = at
            elif (
                host.ejections > 0
                and host.returned_at is not None
                and at - host.returned_at >= self.settings.interval_s
            ):
                host.ejections -= 1

    def _ejection_time(self, host: _Host) -> float:
        return min(self.settings.base_ejection_time_s * host.ejections, MAX_EJECTION_TIME_S)

    # --- results -----------------------------------------------------------------------------

    def record(self, endpoint: Endpoint, status: int | None, now: float) -> bool:
        """Record one try's result (``status`` ``None``: no answer); tell whether it ejected."""
        self.advance(now)
        host = self._hosts.get(endpoint)
        if host is None:
            return False
        gateway = status is None or 502 <= status <= 504
        if status is not None and status < 500:
            host.consecutive_5xx = host.consecutive_gateway = 0
            self._move(host, "result")
            return False
        host.consecutive_5xx += 1
        host.consecutive_gateway += 1 if gateway else 0
        settings = self.settings
        crossed = (
            0 < settings.consecutive_5xx_errors <= host.consecutive_5xx
            or 0 < settings.consecutive_gateway_errors <= host.consecutive_gateway
        )
        if not crossed or host.state is HostState.EJECTED:
            self._move(host, "result")
            return False
        host.consecutive_5xx = host.consecutive_gateway = 0
        if not self._may_eject():
            self._move(host, "capped")
            return False
        self._move(host, "threshold")
        host.ejections += 1
        host.ejected_at = now
        self.ejections_total += 1
        return True

    def _may_eject(self) -> bool:
        active = self.ejections_active
        share = 100.0 * (active + 1) / len(self._hosts)
        return active == 0 or share <= self.settings.max_ejection_percent

    @staticmethod
    def _move(host: _Host, event: str) -> None:
        host.state = TRANSITIONS[(host.state, event)]

    # --- queries -----------------------------------------------------------------------------

    @property
    def ejections_active(self) -> int:
        """Return how many hosts are ejected now (as of the last ``advance``)."""
        return sum(h.state is HostState.EJECTED for h in self._hosts.values())

    def ejected_until(self, endpoint: Endpoint) -> float | None:
        """Return when ``endpoint``'s ejection time ends, or ``None`` when it is not ejected.

        The host actually returns at the first sweep at or after that instant.
        """
        host = self._hosts.get(endpoint)
        if host is None or host.state is not HostState.EJECTED:
            return None
        return host.ejected_at + self._ejection_time(host)

    def available(
        self, endpoints: Sequence[Endpoint], now: float
    ) -> tuple[list[Endpoint], list[tuple[Endpoint, float]]]:
        """Split ``endpoints`` into those in service and ``(host, ejected until)`` for the rest."""
        self.advance(now)
        usable: list[Endpoint] = []
        skipped: list[tuple[Endpoint, float]] = []
        for endpoint in endpoints:
            until = self.ejected_until(endpoint)
            if until is None:
                usable.append(endpoint)
            else:
                skipped.append((endpoint, until))
        return usable, skipped

    def state(self, endpoint: Endpoint) -> HostState:
        """Return ``endpoint``'s state (``HEALTHY`` for a host the detector does not know)."""
        host = self._hosts.get(endpoint)
        return HostState.HEALTHY if host is None else host.state

    def statistics(self, now: float) -> OutlierStats:
        """Return the ejection counters as of ``now``."""
        self.advance(now)
        ejected = tuple(str(e) for e, h in self._hosts.items() if h.state is HostState.EJECTED)
        return OutlierStats(len(ejected), self.ejections_total, ejected)
