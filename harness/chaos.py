"""The fault schedule: apply each fault at its start, hold it, revert it at its end.

Each fault kind is a small unit registered by name in :data:`FAULT_KINDS` (Toxiproxy's
``toxics/*.go`` habit): a class with ``apply`` and ``revert`` that acts on the topology.

- ``delay``/``abort`` (mesh faults) are posted to the sidecars' admin API, with the same
  fields as in the experiment file; reverting deletes them.
- ``kill`` SIGKILLs the target replicas with their sidecars; reverting restarts them.
- ``pause`` SIGSTOPs them; reverting SIGCONTs them.

Reverting always runs: when the run ends early (an error, Ctrl-C), every mesh fault still
applied is removed, shielded from the cancellation, before the topology is taken down (killed
or paused processes are reaped with it). A ``kill`` or ``pause`` without ``duration`` holds
until the end of the run. Each fault's real application and removal times are kept for the
report (``applied_at_s``, ``removed_at_s``, seconds after the start of measurement).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from harness.experiment import FaultSpec, FaultTarget
from harness.topology import Replica
from meshcore.errors import UpstreamError
from meshcore.model import Endpoint, Request
from meshcore.transport.client import request_once
from meshcore.transport.network import Network

__all__ = [
    "FAULT_KINDS",
    "AppliedFault",
    "ChaosError",
    "ChaosTarget",
    "FaultAction",
    "FaultSchedule",
]

_REVERT_DEADLINE_S = 5.0


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


class MeshFault:
    """``delay`` and ``abort``: a runtime fault in the sidecars' admin API."""

    reverts_on_exit = True

    def __init__(self, spec: FaultSpec, topology: ChaosTarget) -> None:
        self._spec = spec
        self._topology = topology

    async def apply(self) -> None:
        """POST the fault to every sidecar it acts in."""
        spec = self._spec
        keys = ("delay", "abort", "level", "headers")
        body = {key: spec.fields[key] for key in keys if key in spec.fields}
        body["name"] = spec.name
        if spec.target.source is not None:
            body["destination"] = spec.target.service
        request = Request(
            "POST", "/faults", (("content-type", "application/json"),), json.dumps(body).encode()
        )
        for admin in self._topology.admins(spec.target):
            response = await request_once(self._topology.network, admin, request)
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
                await request_once(self._topology.network, admin, request)


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
        self._replicas = topology.chosen(spec.target)
        self._act = act
        self._undo = undo

    async def apply(self) -> None:
        """Act on every target replica."""
        for replica in self._replicas:
            self._act(replica)

    async def revert(self) -> None:
        """Undo the fault on every target replica."""
        for replica in self._replicas:
            self._undo(replica)


FAULT_KINDS: dict[str, Callable[[FaultSpec, ChaosTarget], FaultAction]] = {
    "delay": MeshFault,
    "abort": MeshFault,
    "delay+abort": MeshFault,
    "kill": lambda spec, topology: ReplicaFault(spec, topology, topology.kill, topology.restart),
    "pause": lambda spec, topology: ReplicaFault(spec, topology, topology.pause, topology.resume),
}


@dataclass
class AppliedFault:
    """What happened to one scheduled fault."""

    spec: FaultSpec
    applied_at_s: float | None = None
    removed_at_s: float | None = None


class FaultSchedule:
    """Applies ``faults`` on time to ``topology``."""

    def __init__(self, faults: tuple[FaultSpec, ...], topology: ChaosTarget) -> None:
        self.applied = [AppliedFault(spec) for spec in faults]
        self._actions: list[FaultAction] = [
            FAULT_KINDS[spec.kind](spec, topology) for spec in faults
        ]

    async def run(self, measure_start: float, end_s: float) -> None:
        """Run the schedule; ``end_s`` (after ``measure_start``) ends faults without a duration."""
        try:
            async with trio.open_nursery() as nursery:
                for fault, action in zip(self.applied, self._actions, strict=True):
                    nursery.start_soon(self._hold, fault, action, measure_start, end_s)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(_REVERT_DEADLINE_S):
                for fault, action in zip(self.applied, self._actions, strict=True):
                    still_on = fault.applied_at_s is not None and fault.removed_at_s is None
                    if still_on and action.reverts_on_exit:
                        await self._revert(fault, action, measure_start)

    async def _hold(
        self, fault: AppliedFault, action: FaultAction, measure_start: float, end_s: float
    ) -> None:
        spec = fault.spec
        await trio.sleep_until(measure_start + spec.start_s)
        # Marked applied before acting, so that a cancellation half way still reverts.
        fault.applied_at_s = trio.current_time() - measure_start
        await action.apply()
        if spec.duration_s is None and not action.reverts_on_exit:
            return  # a process fault without duration holds until the run ends
        stop_s = end_s if spec.duration_s is None else spec.start_s + spec.duration_s
        await trio.sleep_until(measure_start + min(stop_s, end_s))
        await self._revert(fault, action, measure_start)

    async def _revert(self, fault: AppliedFault, action: FaultAction, measure_start: float) -> None:
        await action.revert()
        fault.removed_at_s = trio.current_time() - measure_start
