"""The fault schedule: apply each fault at its start, hold it, revert it at its end.

Reverting always runs: when the run ends early (an error, Ctrl-C), every fault still applied
is removed, shielded from the cancellation, before the topology is taken down. Each fault's
real application and removal times are kept for the report (``applied_at_s``,
``removed_at_s``, seconds after the start of measurement).

Mesh faults (``delay``, ``abort``) are applied through the sidecars' admin API, with the same
fields as in the experiment file.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import trio

from harness.experiment import FaultSpec, FaultTarget
from meshcore.errors import UpstreamError
from meshcore.model import Endpoint, Request
from meshcore.transport.client import request_once
from meshcore.transport.network import Network

__all__ = ["AppliedFault", "ChaosError", "FaultSchedule"]

_REVERT_DEADLINE_S = 5.0


class ChaosError(Exception):
    """A fault could not be applied (the sidecar refused it or did not answer)."""


@dataclass
class AppliedFault:
    """What happened to one scheduled fault."""

    spec: FaultSpec
    applied_at_s: float | None = None
    removed_at_s: float | None = None


class FaultSchedule:
    """Applies ``faults`` on time, through the admin APIs that ``admins`` names."""

    def __init__(
        self,
        faults: tuple[FaultSpec, ...],
        admins: Callable[[FaultTarget], list[Endpoint]],
        network: Network,
    ) -> None:
        self._admins = admins
        self._network = network
        self.applied = [AppliedFault(spec) for spec in faults]

    async def run(self, measure_start: float, end_s: float) -> None:
        """Run the schedule; ``end_s`` (after ``measure_start``) ends faults without a duration."""
        try:
            async with trio.open_nursery() as nursery:
                for fault in self.applied:
                    nursery.start_soon(self._hold, fault, measure_start, end_s)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(_REVERT_DEADLINE_S):
                for fault in self.applied:
                    if fault.applied_at_s is not None and fault.removed_at_s is None:
                        await self._remove(fault, measure_start)

    async def _hold(self, fault: AppliedFault, measure_start: float, end_s: float) -> None:
        spec = fault.spec
        await trio.sleep_until(measure_start + spec.start_s)
        await self._apply(fault, measure_start)
        stop_s = end_s if spec.duration_s is None else spec.start_s + spec.duration_s
        await trio.sleep_until(measure_start + min(stop_s, end_s))
        await self._remove(fault, measure_start)

    async def _apply(self, fault: AppliedFault, measure_start: float) -> None:
        spec = fault.spec
        body = {key: spec.fields[key] for key in ("delay", "abort", "level") if key in spec.fields}
        body["name"] = spec.name
        if spec.target.source is not None:
            body["destination"] = spec.target.service
        # Marked applied before the calls, so that a cancellation half way still reverts.
        fault.applied_at_s = trio.current_time() - measure_start
        for admin in self._admins(spec.target):
            request = Request(
                "POST", "/faults", (("content-type", "application/json"),),
                json.dumps(body).encode(),
            )  # fmt: skip
            response = await request_once(self._network, admin, request)
            if response.status != 201:
                raise ChaosError(
                    f"fault {spec.name}: sidecar {admin} refused it: {response.body.decode()}"
                )

    async def _remove(self, fault: AppliedFault, measure_start: float) -> None:
        for admin in self._admins(fault.spec.target):
            # A sidecar that is gone holds no fault any more: nothing is left to revert there.
            with contextlib.suppress(UpstreamError):
                await request_once(
                    self._network, admin, Request("DELETE", f"/faults/{fault.spec.name}")
                )
        fault.removed_at_s = trio.current_time() - measure_start
