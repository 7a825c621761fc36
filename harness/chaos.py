"""The fault schedule: apply each fault at its start, hold it, revert it at its end.

Each fault kind is a small unit registered by name in :data:`FAULT_KINDS` (Toxiproxy's
``toxics/*.go`` habit): a class with ``apply`` and ``revert`` that acts on the topology.

- ``delay``/``abort`` (mesh faults) and the connection-level ``toxic``, ``partition``,
  ``certExpired``, ``wrongIdentity`` and ``untrustedCa`` are posted to the sidecars' admin
  API, with the same fields as in the experiment file; reverting deletes them.
- ``kill`` SIGKILLs the target replicas with their sidecars; reverting restarts them.
- ``pause`` SIGSTOPs them; reverting SIGCONTs them.

Schedules (docs/faults.md): a fault acts in each of its windows (one from ``start`` for
``duration``, or a recurring ``for`` every ``every``), on its target's replicas (all, one, or the
share the seed chose). A ``ramp`` raises a delay's or an abort's percent linearly from 0 over its
length, in steps of :data:`RAMP_STEP_S`: the schedule re-posts the rule with the step's percent,
and the sidecar replaces a rule of the same name at once. Steps of 1 s keep the ramp in the
schedule (no clock shared between processes, no sidecar change) and are as fine as the report,
whose intervals are 1 s: each step holds the linear ramp's mean over its second.

The schedule talks to the admin APIs over kept-alive connections (one
:class:`~meshcore.transport.client.ControlClient`), opened when the schedule starts, as Istio's
control plane pushes configuration over a long-lived xDS stream: a mesh fault takes effect in
a sidecar one hop (one-way latency) after the schedule sends it, not a connect round trip later.
That matters in simulate mode, whose connects cost a round trip of ``spec.network.latency``: with
a connection per call, a fault removed at T still caught the request sent at T, which reached
the target three hops later, and put it in the recovery phase. A fault on several sidecars
reaches them one after another, one round trip apart.

Overlapping faults compose: mesh faults are separate rules that the sidecar combines (delays
add up, the first abort wins), and process faults count their holders, so a replica killed by
two faults comes back when the last of them ends.

Reverting always runs: when the run ends early (an error, Ctrl-C), every mesh fault still
applied is removed, shielded from the cancellation, before the topology is taken down (killed
or paused processes are reaped with it). A ``kill`` or ``pause`` without ``duration`` holds
until the end of the run. Each fault's real application and removal times are kept for the
report (``applied_at_s``, ``removed_at_s``, seconds after the start of measurement), one
:class:`AppliedFault` per window.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from harness.experiment import FaultSpec, FaultTarget
from harness.topology import Replica
from meshcore.errors import UpstreamError
from meshcore.model import Endpoint, Request
from meshcore.transport.client import ControlClient
from meshcore.transport.network import Network

__all__ = [
    "FAULT_KINDS",
    "RAMP_STEP_S",
    "AppliedFault",
    "ChaosError",
    "ChaosTarget",
    "FaultAction",
    "FaultFactory",
    "FaultSchedule",
]

_REVERT_DEADLINE_S = 5.0
RAMP_STEP_S = 1.0


class ChaosError(Exception):
    """A fault could not be applied (the sidecar refused it or did not answer)."""


class ChaosTarget(Protocol):
    """What the chaos schedule needs of a topology backend."""

    network: Network

    def admins(self, target: FaultTarget) -> list[Endpoint]:
        """Return the sidecar admin APIs where a mesh fault on ``target`` is applied."""
        ...

    def chosen(self, target: FaultTarget) -> list[Replica]:
        """Return the replicas a fault on a service or replica acts on."""
        ...

    def kill(self, replica: Replica) -> None:
        """Take a replica and its sidecar down."""
        ...

    def restart(self, replica: Replica) -> None:
        """Bring a killed replica and its sidecar back."""
        ...

    def pause(self, replica: Replica) -> None:
        """Freeze a replica and its sidecar."""
        ...

    def resume(self, replica: Replica) -> None:
        """Unfreeze a paused replica and its sidecar."""
        ...


class FaultAction(Protocol):
    """One fault kind acting on a topology."""

    #: Whether an interrupted run must revert it on the way out (process faults need not:
    #: the topology's teardown reaps the processes anyway).
    reverts_on_exit: bool

    async def apply(self) -> None:
        """Inject the fault."""
        ...

    async def revert(self) -> None:
        """Remove the fault."""
        ...


# Faults the sidecars apply to connections: Toxiproxy's toxics, partitions, bad certificates.
_CONNECTION_KINDS = ("toxic", "partition", "certExpired", "wrongIdentity", "untrustedCa")


class MeshFault:
    """A runtime fault in the sidecars' admin API: delay, abort, or a connection-level fault."""

    reverts_on_exit = True

    def __init__(self, spec: FaultSpec, topology: ChaosTarget, client: ControlClient) -> None:
        self._spec = spec
        self._topology = topology
        self._client = client

    async def apply(self) -> None:
        """POST the fault to every sidecar it acts in (at the ramp's first step, if any)."""
        ramp_s = self._spec.ramp_s
        await self._post(1.0 if ramp_s is None else ramp_scale(0, ramp_s))

    async def ramp(self, window_start: float) -> None:
        """Re-post the fault at each later step of its ramp, from ``window_start`` (trio time)."""
        ramp_s = self._spec.ramp_s
        if ramp_s is None:
            return
        for step in range(1, math.ceil(ramp_s / RAMP_STEP_S)):
            await trio.sleep_until(window_start + step * RAMP_STEP_S)
            await self._post(ramp_scale(step, ramp_s))
        await trio.sleep_until(window_start + ramp_s)
        await self._post(1.0)

    async def _post(self, scale: float) -> None:
        spec = self._spec
        keys = ("delay", "abort", "level", "headers", *_CONNECTION_KINDS)
        body: dict[str, Any] = {
            key: copy.deepcopy(spec.fields[key]) for key in keys if key in spec.fields
        }
        if scale < 1.0 and spec.rule is not None:
            for key, part in (("delay", spec.rule.delay), ("abort", spec.rule.abort)):
                if part is not None:
                    body[key]["percent"] = round(100 * part.fraction * scale, 6)
        body["name"] = spec.name
        if spec.target.source is not None:
            body["destination"] = spec.target.service
        request = Request(
            "POST", "/faults", (("content-type", "application/json"),), json.dumps(body).encode()
        )
        for admin in self._topology.admins(spec.target):
            response = await self._client.round_trip(admin, request)
            if response.status != 201:
                raise ChaosError(
                    f"fault {spec.name}: sidecar {admin} refused it: {response.body.decode()}"
                )

    async def revert(self) -> None:
        """DELETE the fault from every sidecar it acts in."""
        request = Request("DELETE", f"/faults/{self._spec.name}")
        for admin in self._topology.admins(self._spec.target):
            # A sidecar that is gone holds no fault any more: nothing is left to revert there.
            with contextlib.suppress(UpstreamError):
                await self._client.round_trip(admin, request)


class ReplicaFault:
    """A fault on the target replicas' processes: ``act`` on each, ``undo`` to revert.

    ``kill`` acts with SIGKILL (replica and sidecar) and reverts by restarting them; ``pause``
    acts with SIGSTOP and reverts with SIGCONT.
    """

    reverts_on_exit = False

    def __init__(
        self,
        spec: FaultSpec,
        topology: ChaosTarget,
        act: Callable[[Replica], None],
        undo: Callable[[Replica], None],
    ) -> None:
        self._kind = spec.kind
        self._replicas = topology.chosen(spec.target)
        self._act = act
        self._undo = undo
        #: How many faults of this kind hold each replica; the schedule shares one between its
        #: faults, so overlapping ones compose (acted on by the first, undone by the last).
        self.holds: Counter[tuple[str, str]] = Counter()

    async def apply(self) -> None:
        """Act on every target replica that no other fault of this kind holds yet."""
        for replica in self._replicas:
            key = (self._kind, replica.name)
            self.holds[key] += 1
            if self.holds[key] == 1:
                self._act(replica)

    async def revert(self) -> None:
        """Undo the fault on every target replica that no other fault still holds."""
        for replica in self._replicas:
            key = (self._kind, replica.name)
            self.holds[key] -= 1
            if self.holds[key] == 0:
                self._undo(replica)


def ramp_scale(step: int, ramp_s: float) -> float:
    """Return the share of its percent a ramped fault has in step ``step`` (0-based).

    The linear ramp's mean over the step, so the staircase carries the same faults on average.
    """
    return min(1.0, (step + 0.5) * RAMP_STEP_S / ramp_s)


#: Makes the action of one fault on a topology; mesh faults send their admin calls with the
#: schedule's :class:`ControlClient`, process faults need none.
FaultFactory = Callable[[FaultSpec, ChaosTarget, ControlClient], FaultAction]

FAULT_KINDS: dict[str, FaultFactory] = {
    "delay": MeshFault,
    "abort": MeshFault,
    "delay+abort": MeshFault,
    "kill": lambda spec, topo, _client: ReplicaFault(spec, topo, topo.kill, topo.restart),
    "pause": lambda spec, topo, _client: ReplicaFault(spec, topo, topo.pause, topo.resume),
    # Connection-level faults act in the sidecars' transport, posted like delay and abort.
    **dict.fromkeys(_CONNECTION_KINDS, MeshFault),
}


@dataclass
class AppliedFault:
    """What happened to one scheduled fault, in one of its windows (``window`` for recurring)."""

    spec: FaultSpec
    applied_at_s: float | None = None
    removed_at_s: float | None = None
    window: int | None = None


class FaultSchedule:
    """Applies ``faults`` on time to ``topology``, over kept-alive admin connections."""

    def __init__(self, faults: tuple[FaultSpec, ...], topology: ChaosTarget) -> None:
        self._client = ControlClient(topology.network)
        # One entry per fault now (its first window); a recurring fault adds one per window.
        self.applied = [
            AppliedFault(spec, window=None if spec.every_s is None else 0) for spec in faults
        ]
        self._actions: list[FaultAction] = [
            FAULT_KINDS[spec.kind](spec, topology, self._client) for spec in faults
        ]
        # The sidecars the mesh faults talk to, connected when the schedule starts.
        self._admins = list(
            dict.fromkeys(
                admin
                for spec, action in zip(faults, self._actions, strict=True)
                if isinstance(action, MeshFault)
                for admin in topology.admins(spec.target)
            )
        )
        holds: Counter[tuple[str, str]] = Counter()
        for action in self._actions:
            if isinstance(action, ReplicaFault):
                action.holds = holds
        self._action_of = {
            id(spec): action for spec, action in zip(faults, self._actions, strict=True)
        }

    async def run(self, measure_start: float, end_s: float) -> None:
        """Run the schedule; ``end_s`` (after ``measure_start``) ends faults without a duration."""
        try:
            async with trio.open_nursery() as nursery:
                for admin in self._admins:
                    nursery.start_soon(self._connect, admin)
                for fault, action in zip(list(self.applied), self._actions, strict=True):
                    nursery.start_soon(self._hold, fault, action, measure_start, end_s)
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(_REVERT_DEADLINE_S):
                    for fault in self.applied:
                        action = self._action_of[id(fault.spec)]
                        still_on = fault.applied_at_s is not None and fault.removed_at_s is None
                        if still_on and action.reverts_on_exit:
                            await self._revert(fault, action, measure_start)
                await self._client.aclose()

    async def _connect(self, admin: Endpoint) -> None:
        """Connect to ``admin`` ahead of the first fault, as the xDS stream is up before it."""
        # A sidecar that does not answer now fails the fault's own call, which reports it.
        with contextlib.suppress(UpstreamError):
            await self._client.connect(admin)

    async def _hold(
        self, first: AppliedFault, action: FaultAction, measure_start: float, end_s: float
    ) -> None:
        """Apply and revert ``action`` in each window of its fault."""
        spec = first.spec
        for index, (start_s, stop_s) in enumerate(spec.windows(end_s)):
            fault = first
            if index > 0:
                fault = AppliedFault(spec, window=index)
                self.applied.append(fault)
            await trio.sleep_until(measure_start + start_s)
            # Marked applied before acting, so that a cancellation half way still reverts.
            fault.applied_at_s = trio.current_time() - measure_start
            await action.apply()
            if spec.duration_s is None and spec.every_s is None and not action.reverts_on_exit:
                return  # a process fault without duration holds until the run ends
            async with trio.open_nursery() as window:
                if isinstance(action, MeshFault):
                    window.start_soon(action.ramp, measure_start + start_s)
                await trio.sleep_until(measure_start + stop_s)
                window.cancel_scope.cancel()
            await self._revert(fault, action, measure_start)

    async def _revert(self, fault: AppliedFault, action: FaultAction, measure_start: float) -> None:
        await action.revert()
        fault.removed_at_s = trio.current_time() - measure_start
