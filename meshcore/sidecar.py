"""A sidecar: configuration in, inbound and outbound layer stacks out, served on a network.

The two stacks are assembled here and nowhere else, first layer outermost, each with the
reason it sits where it sits (DESIGN.md section 2). Layers still to come from the mesh-core
work (timeouts, retries, pool limits, outlier detection, authorization, mTLS) slot in at the
places the design names.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from typing import Any

import trio

from meshcore.admin import AdminApi
from meshcore.config import SidecarConfig
from meshcore.layers.balance import BalanceLayer
from meshcore.layers.base import Service
from meshcore.layers.fault import FaultLayer, FaultTable
from meshcore.layers.route import RouteLayer
from meshcore.layers.telemetry import AccessLogSink, TelemetryLayer
from meshcore.layers.upstream import UpstreamLayer
from meshcore.model import Endpoint
from meshcore.policy.balancer import make_balancer
from meshcore.telemetry import SidecarTelemetry
from meshcore.transport.http1 import Handler, serve_http
from meshcore.transport.network import Network
from meshcore.transport.pool import UpstreamPool

__all__ = ["Sidecar", "SidecarAddresses", "stdout_access_log"]


@dataclass(frozen=True, slots=True)
class SidecarAddresses:
    """Where a running sidecar listens (ports resolved when the config asked for port 0)."""

    admin: Endpoint
    inbound: Endpoint | None
    outbound: Endpoint | None


def stdout_access_log(entry: dict[str, Any]) -> None:
    """Write one access-log entry as a JSON line on standard output."""
    sys.stdout.write(json.dumps(entry, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class Sidecar:
    """One workload's proxy: an inbound listener in front of the app, an outbound one for it."""

    def __init__(
        self, config: SidecarConfig, network: Network, *, access_log: AccessLogSink | None = None
    ) -> None:
        self.config = config
        self.network = network
        self.access_log = access_log
        self.faults = FaultTable()
        self.telemetry = SidecarTelemetry()
        self.ready = False
        # One RNG per decision point, all derived from the seed and the workload name, so that
        # a run is reproducible and adding a layer does not shift another layer's draws.
        self._seed = f"{config.seed}:{config.name}"
        self._pools: list[UpstreamPool] = []

    def _rng(self, purpose: str) -> random.Random:
        return random.Random(f"{self._seed}:{purpose}")

    def build_outbound(self, pool: UpstreamPool) -> Service:
        """Return the outbound stack: local app -> mesh."""
        config = self.config
        balancers = {name: make_balancer(config.policy(name).load_balancer)
                     for name in config.destinations}  # fmt: skip
        # Innermost: one pooled HTTP/1.1 exchange with the chosen endpoint.
        service: Service = UpstreamLayer(pool)
        # Attempt-level edge faults act like the network between here and the endpoint: below
        # the balancer, so (once retries exist) each try meets the fault afresh.
        service = FaultLayer(
            service,
            self.faults,
            lambda request: self.faults.outbound(request.destination, "attempt"),
            self._rng("fault-attempt"),
        )
        # The balancer picks the endpoint of each try.
        service = BalanceLayer(service, config.destinations, balancers, self._rng("balancer"))
        # Request-level edge faults are Istio's fault filter: before retries, never retried.
        service = FaultLayer(
            service,
            self.faults,
            lambda request: self.faults.outbound(request.destination, "request"),
            self._rng("fault-request"),
        )
        # Routing names the destination every layer below works for.
        service = RouteLayer(service, config.destinations)
        # Outermost: ids, metrics and the access log see every request, even local answers.
        return TelemetryLayer(
            service,
            workload=config.name,
            reporter="source",
            telemetry=self.telemetry,
            access_log=self.access_log,
            rng=self._rng("request-id"),
        )

    def build_inbound(self, pool: UpstreamPool, app: Endpoint) -> Service:
        """Return the inbound stack: mesh -> local app."""
        # Innermost: the local app, over a keep-alive pool.
        service: Service = UpstreamLayer(pool, fixed=app)
        # Server-side faults: the replica itself misbehaves, so callers' resilience reacts.
        service = FaultLayer(
            service, self.faults, lambda request: self.faults.inbound(), self._rng("fault-inbound")
        )
        # Outermost: ids, metrics and the access log, as reported by the destination.
        return TelemetryLayer(
            service,
            workload=self.config.name,
            reporter="destination",
            telemetry=self.telemetry,
            access_log=self.access_log,
            rng=self._rng("request-id-inbound"),
        )

    def stats(self) -> dict[str, Any]:
        """Return the counters of ``GET /stats``."""
        counters = dict(sorted(self.telemetry.counters.items()))
        counters["fault.delays_injected"] = self.faults.delays_injected
        counters["fault.aborts_injected"] = self.faults.aborts_injected
        counters["upstream_cx_total"] = sum(p.connections_opened for p in self._pools)
        return {"workload": self.config.name, "counters": counters}

    async def run(
        self, *, task_status: trio.TaskStatus[SidecarAddresses] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve the admin, inbound and outbound listeners until cancelled."""
        config = self.config
        async with trio.open_nursery() as nursery:
            pool = UpstreamPool(self.network, nursery)
            self._pools.append(pool)

            async def listen(endpoint: Endpoint, handler: Handler) -> Endpoint:
                async def on_connection(stream: trio.abc.Stream) -> None:
                    await serve_http(stream, handler)

                bound: Endpoint = await nursery.start(self.network.serve, endpoint, on_connection)
                return bound

            admin = await listen(config.admin, AdminApi(self))
            inbound = outbound = None
            if config.inbound_listen is not None and config.inbound_app is not None:
                inbound = await listen(
                    config.inbound_listen, self.build_inbound(pool, config.inbound_app)
                )
            if config.outbound_listen is not None:
                outbound = await listen(config.outbound_listen, self.build_outbound(pool))
            self.ready = True
            task_status.started(SidecarAddresses(admin, inbound, outbound))
