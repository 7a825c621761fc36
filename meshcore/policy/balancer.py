"""Load-balancer picks: which endpoint of a destination gets the next try.

Each balancer is a small object that sees the candidate endpoints (already filtered of
ejected ones by the caller) and a seeded RNG, and returns one. ``LEAST_REQUEST`` is Envoy's
"power of two choices": draw two distinct candidates at random and take the one with fewer
requests in flight, which is what Istio uses by default. ``PEAK_EWMA`` (an extension) is
Linkerd's latency-aware power of two choices: the cost of an endpoint is its peak-sensitive
moving average of latency times its requests in flight plus one. ``exclude`` holds hosts
already tried by this request: they are avoided when any other candidate remains (Envoy's
previous_hosts retry predicate).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

from meshcore.model import Endpoint

__all__ = [
    "LOAD_BALANCERS",
    "Balancer",
    "LeastRequest",
    "PeakEwma",
    "RandomPick",
    "RoundRobin",
    "make_balancer",
]

LOAD_BALANCERS = ("LEAST_REQUEST", "ROUND_ROBIN", "RANDOM", "PEAK_EWMA")


def _candidates(endpoints: Sequence[Endpoint], exclude: frozenset[Endpoint]) -> Sequence[Endpoint]:
    fresh = [e for e in endpoints if e not in exclude]
    return fresh or endpoints


class Balancer(Protocol):
    """Picks an endpoint; told when a request to it starts and ends."""

    def pick(
        self,
        endpoints: Sequence[Endpoint],
        rng: random.Random,
        exclude: frozenset[Endpoint],
        now: float = 0.0,
    ) -> Endpoint | None:
        """Return the endpoint for the next try, or ``None`` when there is none."""
        ...

    def on_start(self, endpoint: Endpoint) -> None:
        """Note that a request to ``endpoint`` is now in flight."""
        ...

    def on_end(self, endpoint: Endpoint, latency_s: float, now: float) -> None:
        """Note that a request to ``endpoint`` finished after ``latency_s``."""
        ...


class _InFlight:
    """Counts requests in flight per endpoint (shared by every balancer)."""

    def __init__(self) -> None:
        self.active: Counter[Endpoint] = Counter()

    def on_start(self, endpoint: Endpoint) -> None:
        """Count one more request in flight to ``endpoint``."""
        self.active[endpoint] += 1

    def on_end(self, endpoint: Endpoint, latency_s: float, now: float) -> None:
        """Count one fewer request in flight to ``endpoint``."""
        self.active[endpoint] -= 1


class RoundRobin(_InFlight):
    """Endpoints in turn (Envoy ROUND_ROBIN)."""

    def __init__(self) -> None:
        super().__init__()
        self._next = 0

    def pick(
        self,
        endpoints: Sequence[Endpoint],
        rng: random.Random,
        exclude: frozenset[Endpoint],
        now: float = 0.0,
    ) -> Endpoint | None:
        """Return the next endpoint in turn, skipping excluded ones when possible."""
        candidates = _candidates(endpoints, exclude)
        if not candidates:
            return None
        chosen = candidates[self._next % len(candidates)]
        self._next += 1
        return chosen


class RandomPick(_InFlight):
    """A uniformly random endpoint (Envoy RANDOM)."""

    def pick(
        self,
        endpoints: Sequence[Endpoint],
        rng: random.Random,
        exclude: frozenset[Endpoint],
        now: float = 0.0,
    ) -> Endpoint | None:
        """Return a random endpoint, avoiding excluded ones when possible."""
        candidates = _candidates(endpoints, exclude)
        return rng.choice(candidates) if candidates else None


def _two_choices(
    candidates: Sequence[Endpoint], rng: random.Random, cost: Callable[[Endpoint], float]
) -> Endpoint | None:
    """Power of two choices: draw two distinct candidates, keep the cheaper (ties: the first)."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    first, second = rng.sample(candidates, 2)
    return second if cost(second) < cost(first) else first


class LeastRequest(_InFlight):
    """Power of two choices on requests in flight (Envoy LEAST_REQUEST, choice_count 2)."""

    def pick(
        self,
        endpoints: Sequence[Endpoint],
        rng: random.Random,
        exclude: frozenset[Endpoint],
        now: float = 0.0,
    ) -> Endpoint | None:
        """Return the less loaded of two distinct random endpoints (ties: the first drawn)."""
        return _two_choices(_candidates(endpoints, exclude), rng, self.active.__getitem__)


class PeakEwma(_InFlight):
    """Linkerd's PeakEWMA: power of two choices on latency x (requests in flight + 1).

    Each endpoint keeps a moving average of its latency that jumps up at once to a slower
    sample (peak-sensitive) and otherwise follows samples with weight ``exp(-elapsed/decay)``.
    An endpoint without samples costs ``default_rtt_s``. The estimate also decays towards zero
    while an endpoint gets no answers, so a slow endpoint is tried again later (tower's
    ``peak_ewma``; Linkerd's defaults: decay 10 s, default RTT 30 ms).
    """

    def __init__(self, decay_s: float = 10.0, default_rtt_s: float = 0.030) -> None:
        super().__init__()
        self._decay_s = decay_s
        self._default_rtt_s = default_rtt_s
        self._estimate: dict[Endpoint, tuple[float, float]] = {}  # endpoint: (rtt, at)

    def _rtt(self, endpoint: Endpoint, now: float) -> float:
        known = self._estimate.get(endpoint)
        if known is None:
            return self._default_rtt_s
        rtt, at = known
        return rtt * math.exp(-max(now - at, 0.0) / self._decay_s)

    def cost(self, endpoint: Endpoint, now: float) -> float:
        """Return the endpoint's load: its latency estimate x (requests in flight + 1)."""
        return self._rtt(endpoint, now) * (self.active[endpoint] + 1)

    def pick(
        self,
        endpoints: Sequence[Endpoint],
        rng: random.Random,
        exclude: frozenset[Endpoint],
        now: float = 0.0,
    ) -> Endpoint | None:
        """Return the cheaper of two distinct random endpoints (ties: the first drawn)."""
        return _two_choices(
            _candidates(endpoints, exclude), rng, lambda endpoint: self.cost(endpoint, now)
        )

    def on_end(self, endpoint: Endpoint, latency_s: float, now: float) -> None:
        """Count the request finished and fold its latency into the estimate."""
        super().on_end(endpoint, latency_s, now)
        if endpoint not in self._estimate:
            self._estimate[endpoint] = (latency_s, now)
            return
        rtt, at = self._estimate[endpoint]
        if latency_s > rtt:
            self._estimate[endpoint] = (latency_s, now)
            return
        weight = math.exp(-max(now - at, 0.0) / self._decay_s)
        self._estimate[endpoint] = (rtt * weight + latency_s * (1.0 - weight), now)


def make_balancer(simple: str) -> Balancer:
    """Return a fresh balancer for Istio's ``loadBalancer.simple`` value."""
    balancers: dict[str, type[RoundRobin | RandomPick | LeastRequest | PeakEwma]] = {
        "ROUND_ROBIN": RoundRobin,
        "RANDOM": RandomPick,
        "LEAST_REQUEST": LeastRequest,
        "PEAK_EWMA": PeakEwma,
    }
    return balancers[simple]()
