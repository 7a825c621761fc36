"""The fault layer: delays and aborts injected at runtime through the admin API.

The same layer class sits at up to three places (see :mod:`meshcore.sidecar`): inbound,
server-side (the replica itself misbehaves); outbound at request level (Istio's fault filter,
before retries); outbound at attempt level (below retries, like a network fault). The
:class:`FaultTable` says which rules apply where; :func:`~meshcore.policy.faults.decide_faults`
decides, this layer only sleeps and answers.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import trio

from meshcore.layers.base import Service
from meshcore.model import Request, Response
from meshcore.policy.faults import FaultRule, decide_faults

__all__ = ["FaultLayer", "FaultTable"]


class FaultTable:
    """The runtime faults of one sidecar, by name, in the order they were added."""

    def __init__(self) -> None:
        self._rules: dict[str, FaultRule] = {}
        self.delays_injected = 0
        self.aborts_injected = 0
        # Called after every change: connection-level faults act on connections already open
        # (Toxiproxy adds a toxic to every link of a proxy), so the transport must hear of it.
        self._listeners: list[Callable[[], None]] = []
        # Every request asks which rules apply to it (several times): the answers are kept
        # until the rules change.
        self._selections: dict[tuple[str | None, str], tuple[FaultRule, ...]] = {}

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change of the rules."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        self._selections.clear()
        for listener in self._listeners:
            listener()

    def add(self, rule: FaultRule) -> None:
        """Add ``rule``, replacing a rule of the same name."""
        self._rules.pop(rule.name, None)
        self._rules[rule.name] = rule
        self._changed()

    def remove(self, name: str) -> bool:
        """Remove the rule called ``name``; tell whether there was one."""
        removed = self._rules.pop(name, None) is not None
        self._changed()
        return removed

    def clear(self) -> None:
        """Remove every rule."""
        self._rules.clear()
        self._changed()

    def _select(self, destination: str | None, level: str, keep: _Keep) -> tuple[FaultRule, ...]:
        # Asked on every read and send of every connection and on every request: with no
        # rules it answers at once, and ``keep`` is a plain function, not a closure per call.
        if not self._rules:
            return ()
        key = (destination, level)
        found = self._selections.get(key)
        if found is None:
            rules = self._rules.values()
            found = tuple(r for r in rules if keep(r, destination, level))
            self._selections[key] = found
        return found

    def connection_rules(self, destination: str | None) -> tuple[FaultRule, ...]:
        """Return the toxics and partitions on ``destination``'s connections (None: inbound)."""
        return self._select(destination, "connection", _acts_on_connections)

    def certificate(self) -> FaultRule | None:
        """Return the newest certificate fault of this sidecar, if any."""
        found = [r for r in self._rules.values() if r.certificate is not None]
        return found[-1] if found else None

    def rules(self) -> tuple[FaultRule, ...]:
        """Return every rule, oldest first."""
        return tuple(self._rules.values())

    def inbound(self) -> tuple[FaultRule, ...]:
        """Return the server-side rules (those without a destination)."""
        return self._select(None, "inbound", _acts_inbound)

    def outbound(self, destination: str, level: str) -> tuple[FaultRule, ...]:
        """Return the edge rules for ``destination`` at ``level`` (attempt or request)."""
        return self._select(destination, level, _acts_on_edge)


# What a rule must be to act on a selection (destination, level) of the table.
_Keep = Callable[[FaultRule, str | None, str], bool]


def _acts_on_connections(rule: FaultRule, destination: str | None, level: str) -> bool:
    return rule.destination == destination and (rule.toxic is not None or rule.partition)


def _acts_inbound(rule: FaultRule, destination: str | None, level: str) -> bool:
    return rule.destination is None


def _acts_on_edge(rule: FaultRule, destination: str | None, level: str) -> bool:
    return rule.destination == destination and rule.level == level


class FaultLayer:
    """Delays and/or aborts requests as the applicable rules decide.

    A delayed request is flagged ``DI`` and an aborted one ``FI``, as Envoy does.
    """

    def __init__(
        self,
        inner: Service,
        table: FaultTable,
        select: Callable[[Request], tuple[FaultRule, ...]],
        rng: random.Random,
    ) -> None:
        self.inner = inner
        self._table = table
        self._select = select
        self._rng = rng

    async def __call__(self, request: Request) -> Response:
        """Apply the faults that fire for ``request``, then pass it on unless aborted."""
        rules = self._select(request)
        if not rules:
            return await self.inner(request)
        decision = decide_faults(rules, self._rng, request.headers)
        if not decision.injected:
            return await self.inner(request)
        if decision.delay_s > 0:
            self._table.delays_injected += 1
            await trio.sleep(decision.delay_s)
        if decision.abort_status is not None:
            self._table.aborts_injected += 1
            response = Response.local(decision.abort_status, "fault filter abort\n", "FI")
        else:
            response = await self.inner(request)
        return response.with_flag("DI") if decision.delay_s > 0 else response
