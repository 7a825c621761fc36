"""Failure accrual: Linkerd's consecutive-failures breaker, per endpoint (a meshchaos extension).

Glossary: an *open* breaker rejects traffic (the electrical meaning, Envoy's and Hystrix's);
Linkerd's own docs say the opposite, so its "closed" endpoint is our ``OPEN`` one.

Theory of operation. Each endpoint of one destination has a breaker:

- ``CLOSED``: traffic flows. ``consecutive_failures`` failures in a row (5xx answers and tries
  without an answer; default 7) open it.
- ``OPEN``: the balancer skips the endpoint until its penalty ends. The penalty starts at
  ``min_penalty_s`` (1 s) and doubles at each re-opening up to ``max_penalty_s`` (1 min), with
  a seeded jitter of up to +/- ``jitter`` of it, as Linkerd's exponential back-off does.
- ``HALF_OPEN``: once the penalty is over, one probe at a time is let through. Its success
  closes the breaker and resets the penalty; its failure opens it again with the next penalty.

The breaker learns the time from ``now`` arguments, so it needs no timer.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from meshcore.model import Endpoint

__all__ = ["TRANSITIONS", "BreakerState", "FailureAccrual", "FailureAccrualSettings"]


class BreakerState(Enum):
    """Where one endpoint's breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


# (state, event) -> next state. "penalty-over" is an admission check after the penalty.
TRANSITIONS: dict[tuple[BreakerState, str], BreakerState] = {
    (BreakerState.CLOSED, "success"): BreakerState.CLOSED,
    (BreakerState.CLOSED, "failure"): BreakerState.CLOSED,
    (BreakerState.CLOSED, "threshold"): BreakerState.OPEN,
    (BreakerState.OPEN, "penalty-over"): BreakerState.HALF_OPEN,
    (BreakerState.OPEN, "success"): BreakerState.OPEN,  # late answers of earlier tries
    (BreakerState.OPEN, "failure"): BreakerState.OPEN,
    (BreakerState.HALF_OPEN, "success"): BreakerState.CLOSED,
    (BreakerState.HALF_OPEN, "failure"): BreakerState.OPEN,
}


@dataclass(frozen=True, slots=True)
class FailureAccrualSettings:
    """Linkerd's ``failureAccrual: consecutive`` with its defaults."""

    consecutive_failures: int = 7
    min_penalty_s: float = 1.0
    max_penalty_s: float = 60.0
    jitter: float = 0.5


@dataclass(slots=True)
class _Breaker:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    openings: int = 0  # consecutive openings without a success: the back-off exponent
    open_until: float = 0.0
    probing: bool = False


class FailureAccrual:
    """The breakers of one destination's endpoints."""

    def __init__(
        self, settings: FailureAccrualSettings, hosts: Iterable[Endpoint], rng: random.Random
    ) -> None:
        self.settings = settings
        self._breakers = {host: _Breaker() for host in hosts}
        self._rng = rng

    def admits(self, endpoint: Endpoint, now: float) -> bool:
        """Tell whether a try may go to ``endpoint`` now (without taking the probe)."""
        breaker = self._breakers.get(endpoint)
        if breaker is None or breaker.state is BreakerState.CLOSED:
            return True
        if breaker.state is BreakerState.OPEN:
            if now < breaker.open_until:
                return False
            self._move(breaker, "penalty-over")
        return not breaker.probing

    def on_start(self, endpoint: Endpoint) -> None:
        """Note that a try to ``endpoint`` starts (it becomes the probe when half-open)."""
        breaker = self._breakers.get(endpoint)
        if breaker is not None and breaker.state is BreakerState.HALF_OPEN:
            breaker.probing = True

    def record(self, endpoint: Endpoint, failed: bool, now: float) -> None:
        """Record one try's result."""
        breaker = self._breakers.get(endpoint)
        if breaker is None:
            return
        was_probe = breaker.state is BreakerState.HALF_OPEN
        breaker.probing = False
        if not failed:
            breaker.failures = 0
            if was_probe:
                breaker.openings = 0
            self._move(breaker, "success")
            return
        breaker.failures += 1
        if was_probe or (
            breaker.state is BreakerState.CLOSED
            and breaker.failures >= self.settings.consecutive_failures
        ):
            self._move(breaker, "failure" if was_probe else "threshold")
            breaker.open_until = now + self._penalty(breaker.openings)
            breaker.openings += 1
            breaker.failures = 0
            return
        self._move(breaker, "failure")

    def _penalty(self, openings: int) -> float:
        settings = self.settings
        penalty = min(settings.min_penalty_s * 2**openings, settings.max_penalty_s)
        spread = penalty * settings.jitter
        jittered: float = penalty + self._rng.uniform(-spread, spread)
        return min(max(jittered, 0.0), settings.max_penalty_s)

    @staticmethod
    def _move(breaker: _Breaker, event: str) -> None:
        breaker.state = TRANSITIONS[(breaker.state, event)]

    def state(self, endpoint: Endpoint) -> BreakerState:
        """Return ``endpoint``'s breaker state (``CLOSED`` for an unknown endpoint)."""
        breaker = self._breakers.get(endpoint)
        return BreakerState.CLOSED if breaker is None else breaker.state

    def open_until(self, endpoint: Endpoint) -> float | None:
        """Return when ``endpoint``'s penalty ends, or ``None`` when its breaker is not open."""
        breaker = self._breakers.get(endpoint)
        if breaker is None or breaker.state is not BreakerState.OPEN:
            return None
        return breaker.open_until

    def states(self) -> dict[str, str]:
        """Return every endpoint's state, for ``/stats``."""
        return {str(e): b.state.value for e, b in self._breakers.items()}
