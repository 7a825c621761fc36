"""Load-balancer picks: which endpoint of a destination gets the next try.

Each balancer is a small object that sees the candidate endpoints (already filtered of
ejected ones by the caller) and a seeded RNG, and returns one. ``LEAST_REQUEST`` is Envoy's
"power of two choices": draw two distinct candidates at random and take the one with fewer
requests in flight, which is what Istio uses by default. ``exclude`` holds hosts already tried
by this request: they are avoided when any other candidate remains (Envoy's previous_hosts
retry predicate).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from meshcore.model import Endpoint

__all__ = ["Balancer", "LeastRequest", "RandomPick", "RoundRobin", "make_balancer"]


def _candidates(endpoints: Sequence[Endpoint], exclude: frozenset[Endpoint]) -> Sequence[Endpoint]:
    fresh = [e for e in endpoints if e not in exclude]
    return fresh or endpoints


class Balancer(Protocol):
    """Picks an endpoint; told when a request to it starts and ends."""

    def pick(
        self, endpoints: Sequence[Endpoint], rng: random.Random, exclude: frozenset[Endpoint]
    ) -> Endpoint | None:
        """Return the endpoint for the next try, or ``None`` when there is none."""
        ...

    def on_start(self, endpoint: Endpoint) -> None:
        """Note that a request to ``endpoint`` is now in flight."""
        ...

    def on_end(self, endpoint: Endpoint) -> None:
        """Note that a request to ``endpoint`` finished."""
        ...


class _InFlight:
    """Counts requests in flight per endpoint (shared by every balancer)."""

    def __init__(self) -> None:
        self.active: Counter[Endpoint] = Counter()

    def on_start(self, endpoint: Endpoint) -> None:
        """Count one more request in flight to ``endpoint``."""
        self.active[endpoint] += 1

    def on_end(self, endpoint: Endpoint) -> None:
        """Count one fewer request in flight to ``endpoint``."""
        self.active[endpoint] -= 1


class RoundRobin(_InFlight):
    """Endpoints in turn (Envoy ROUND_ROBIN)."""

    def __init__(self) -> None:
        super().__init__()
        self._next = 0

    def pick(
        self, endpoints: Sequence[Endpoint], rng: random.Random, exclude: frozenset[Endpoint]
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
        self, endpoints: Sequence[Endpoint], rng: random.Random, exclude: frozenset[Endpoint]
    ) -> Endpoint | None:
        """Return a random endpoint, avoiding excluded ones when possible."""
        candidates = _candidates(endpoints, exclude)
        return rng.choice(candidates) if candidates else None


class LeastRequest(_InFlight):
    """Power of two choices on requests in flight (Envoy LEAST_REQUEST, choice_count 2)."""

    def pick(
        self, endpoints: Sequence[Endpoint], rng: random.Random, exclude: frozenset[Endpoint]
    ) -> Endpoint | None:
        """Return the less loaded of two distinct random endpoints (ties: the first drawn)."""
        candidates = _candidates(endpoints, exclude)
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        first, second = rng.sample(candidates, 2)
        return second if self.active[second] < self.active[first] else first


def make_balancer(simple: str) -> Balancer:
    """Return a fresh balancer for Istio's ``loadBalancer.simple`` value."""
    balancers: dict[str, type[RoundRobin | RandomPick | LeastRequest]] = {
        "ROUND_ROBIN": RoundRobin,
        "RANDOM": RandomPick,
        "LEAST_REQUEST": LeastRequest,
    }
    return balancers[simple]()
