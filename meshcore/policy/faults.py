"""Fault decisions: given a request and a seeded RNG, should it be delayed or aborted?

Istio's HTTPFaultInjection semantics: a delay and an abort each apply to ``percent`` of the
requests, drawn independently; when both are set, the delay happens first and then the abort.
A rule with ``headers`` conditions (Istio's ``match.headers`` on the route that carries the
fault) acts only on requests that satisfy every one of them.
The objects here only decide; the fault layer sleeps and answers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from meshcore.model import Headers
from meshcore.policy.routing import HeaderMatch
from meshcore.policy.toxics import ToxicSpec

__all__ = ["NO_FAULT", "AbortFault", "DelayFault", "FaultDecision", "FaultRule", "decide_faults"]


@dataclass(frozen=True, slots=True)
class DelayFault:
    """Delay ``fraction`` of requests by ``fixed_s`` plus a uniform ``jitter_s`` either way."""

    fixed_s: float
    jitter_s: float = 0.0
    fraction: float = 1.0

    def draw(self, rng: random.Random) -> float | None:
        """Return the delay for one request, or ``None`` when this request is not delayed."""
        if rng.random() >= self.fraction:
            return None
        if self.jitter_s == 0:
            return self.fixed_s
        return max(0.0, self.fixed_s + rng.uniform(-self.jitter_s, self.jitter_s))


@dataclass(frozen=True, slots=True)
class AbortFault:
    """Answer ``fraction`` of requests with ``http_status`` without passing them on."""

    http_status: int
    fraction: float = 1.0

    def draw(self, rng: random.Random) -> int | None:
        """Return the status to abort one request with, or ``None`` to let it through."""
        return self.http_status if rng.random() < self.fraction else None


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One named runtime fault as the sidecar holds it.

    ``destination`` is ``None`` for an inbound (server-side) fault, else the destination
    service of an outbound (edge) fault. ``level`` is ``"attempt"`` (below retries, like a
    network fault: retries and outlier detection react to it) or ``"request"`` (Istio's fault
    filter, before retries: nothing on this hop retries it).
    """

    name: str
    delay: DelayFault | None = None
    abort: AbortFault | None = None
    destination: str | None = None
    level: str = "attempt"
    headers: tuple[HeaderMatch, ...] = ()
    toxic: ToxicSpec | None = None
    partition: bool = False
    certificate: str | None = None
    impersonates: str | None = None

    def applies(self, headers: Headers) -> bool:
        """Tell whether the rule's header conditions hold for a request with ``headers``."""
        return all(condition.matches(headers) for condition in self.headers)


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one request: wait ``delay_s``, then answer ``abort_status`` if set."""

    delay_s: float = 0.0
    abort_status: int | None = None
    rule_names: tuple[str, ...] = ()

    @property
    def injected(self) -> bool:
        """Tell whether any fault acts on this request."""
        return bool(self.rule_names)


NO_FAULT = FaultDecision()


def decide_faults(
    rules: tuple[FaultRule, ...], rng: random.Random, headers: Headers = ()
) -> FaultDecision:
    """Combine every rule that fires into one decision (delays add up; the first abort wins).

    Rules are drawn in their order, so the same rules and seed give the same decisions. Rules
    whose header conditions ``headers`` do not satisfy draw nothing.
    """
    if not rules:
        return NO_FAULT
    delay_s = 0.0
    abort_status: int | None = None
    fired: list[str] = []
    for rule in rules:
        if rule.headers and not rule.applies(headers):
            continue
        fired_here = False
        if rule.delay is not None:
            drawn = rule.delay.draw(rng)
            if drawn is not None:
                delay_s += drawn
                fired_here = True
        if rule.abort is not None:
            status = rule.abort.draw(rng)
            if status is not None and abort_status is None:
                abort_status = status
                fired_here = True
        if fired_here:
            fired.append(rule.name)
    if not fired:
        return NO_FAULT
    return FaultDecision(delay_s, abort_status, tuple(fired))
