"""A sidecar: configuration in, inbound and outbound layer stacks out, served on a network.

The two stacks are assembled here and nowhere else, first layer outermost, each with the
reason it sits where it sits (DESIGN.md section 2). The per-destination state the outbound
layers share (balancers, outlier detectors, breakers, retry admission, pool limits) is built
by :class:`~meshcore.resilience.OutboundPolicies`.

Mutual TLS is not a layer but the transport under them: with ``mtls`` configured, the inbound
listener and the outbound pool run over a :class:`~meshcore.transport.tls.TlsNetwork` with this
workload's certificate, which the sidecar issues from the mesh CA folder and rotates at half
its lifetime. ``tls_cleartext=True`` (simulate mode only, docs/simulate.md) keeps the handshakes
and carries the data after them in the clear.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from meshcore.admin import AdminApi
from meshcore.ca import CertificateAuthority, WorkloadCertificate
from meshcore.certfaults import fault_certificate
from meshcore.config import SidecarConfig
from meshcore.identity import spiffe_id
from meshcore.layers.authz import AuthorizationLayer
from meshcore.layers.balance import BalanceLayer
from meshcore.layers.base import Service
from meshcore.layers.drain import DrainLayer, InFlight
from meshcore.layers.fault import FaultLayer, FaultTable
from meshcore.layers.identity import PeerIdentityLayer
from meshcore.layers.limits import LimitsLayer
from meshcore.layers.retry import RetryLayer
from meshcore.layers.route import RouteLayer
from meshcore.layers.telemetry import AccessLogSink, TelemetryLayer
from meshcore.layers.timeout import TimeoutLayer
from meshcore.layers.upstream import UpstreamLayer
from meshcore.model import Endpoint
from meshcore.resilience import OutboundPolicies
from meshcore.telemetry import SidecarTelemetry
from meshcore.transport.codec import Handler
from meshcore.transport.llhttp import serve_http
from meshcore.transport.network import Network
from meshcore.transport.pool import UpstreamPool
from meshcore.transport.tls import TlsNetwork, WorkloadTls, peer_identity, rotate_forever
from meshcore.transport.toxic import ToxicNetwork

__all__ = ["DRAIN_S", "Sidecar", "SidecarAddresses"]

DRAIN_S = 5.0  # how long a stopping sidecar waits for requests in flight


@dataclass(frozen=True, slots=True)
class SidecarAddresses:
    """Where a running sidecar listens (ports resolved when the config asked for port 0)."""

    admin: Endpoint
    inbound: Endpoint | None
    outbound: Endpoint | None


class Sidecar:
    """One workload's proxy: an inbound listener in front of the app, an outbound one for it."""

    def __init__(
        self,
        config: SidecarConfig,
        network: Network,
        *,
        access_log: AccessLogSink | None = None,
        tls_cleartext: bool = False,
    ) -> None:
        self.config = config
        self.network = network
        self.tls_cleartext = tls_cleartext
        self.access_log = access_log
        self.faults = FaultTable()
        self.telemetry = SidecarTelemetry()
        self.ready = False
        self.in_flight = InFlight()
        self.telemetry.add_counters(self._own_counters)
        # One RNG per decision point, all derived from the seed and the workload name, so that
        # a run is reproducible and adding a layer does not shift another layer's draws.
        self._seed = f"{config.seed}:{config.name}"
        self._pools: list[UpstreamPool] = []
        self.spiffe_id = spiffe_id(config.name)
        self.tls: WorkloadTls | None = None  # set by run() when mtls is on
        # Which SPIFFE ID the server at each endpoint must present: its destination's.
        self._identities = {endpoint: spiffe_id(name)
                            for name, endpoints in config.destinations.items()
                            for endpoint in endpoints}  # fmt: skip

    def _rng(self, purpose: str) -> random.Random:
        return random.Random(f"{self._seed}:{purpose}")

    def _own_counters(self) -> dict[str, float]:
        return {
            "fault.delays_injected": self.faults.delays_injected,
            "fault.aborts_injected": self.faults.aborts_injected,
            "upstream_cx_total": sum(p.connections_opened for p in self._pools),
            **({"tls.rotations": self.tls.rotations} if self.tls is not None else {}),
        }

    async def drain(self, grace_s: float = DRAIN_S) -> None:
        """Wait until no request is in flight, for at most ``grace_s`` (then return anyway)."""
        with trio.move_on_after(grace_s):
            await self.in_flight.wait_idle()

    def build_outbound(self, pool: UpstreamPool) -> Service:
        """Return the outbound stack: local app -> mesh."""
        config = self.config
        state = OutboundPolicies.build(config, trio.current_time(), self._rng)
        self.telemetry.add_gauges(lambda: state.gauges(trio.current_time()))
        count = self.telemetry.count
        pool.configure(state.pool_settings)
        # Innermost: one pooled HTTP/1.1 exchange with the chosen endpoint (idle timeout,
        # maxRequestsPerConnection and maxConnections per destination).
        service: Service = UpstreamLayer(pool)
        # Attempt-level edge faults act like the network between here and the endpoint: below
        # retries, breakers and outlier detection, so each try meets the fault afresh and
        # they all react to it.
        service = FaultLayer(
            service,
            self.faults,
            lambda request: self.faults.outbound(request.destination, "attempt"),
            self._rng("fault-attempt"),
        )
        # Connection-pool limits hold a try until a connection is free, or answer 503 UO; below
        # the balancer, as Envoy's pool sits below its load balancer.
        service = LimitsLayer(service, state.limits, count)
        # The balancer picks each try's host among those outlier detection and the breakers
        # leave in service, avoids hosts already tried, and tells them how the try went.
        service = BalanceLayer(
            service,
            state.members,
            state.balancers,
            self._rng("balancer"),
            detectors=state.detectors,
            accruals=state.accruals,
            on_ejection=lambda destination, now: self.telemetry.edges.ejection(
                config.name, destination, now
            ),
        )
        attempts = service  # mirrored copies enter here: balanced, never retried
        # Retries re-run everything below for each try, after a jittered back-off, within the
        # budget; the per-try timeout cuts one try.
        service = RetryLayer(
            service, state.retries, state.admissions, self._rng("retry-backoff"), count
        )
        # The route timeout spans every try and back-off, so it wraps the retry layer.
        service = TimeoutLayer(service, state.timeouts, count)
        # Request-level edge faults are Istio's fault filter: before the router's timeout and
        # retries, so nothing on this hop retries them.
        service = FaultLayer(
            service,
            self.faults,
            lambda request: self.faults.outbound(request.destination, "request"),
            self._rng("fault-request"),
        )
        # Routing names the destination and subset every layer below works for, and mirrors.
        service = RouteLayer(
            service, state.routes, self._rng("route"), mirror_to=attempts, spawn=pool.spawn
        )
        # Ids, metrics and the access log see every request, even local answers.
        service = self._telemetry_outbound(service)
        # Outermost: counts requests in flight, so a shutdown can drain them.
        return DrainLayer(service, self.in_flight)

    def _telemetry_outbound(self, service: Service) -> Service:
        config = self.config
        return TelemetryLayer(
            service,
            workload=config.name,
            reporter="source",
            telemetry=self.telemetry,
            access_log=self.access_log,
            rng=self._rng("request-id"),
            mtls=config.mtls_mode != "DISABLE",
        )

    def build_inbound(self, pool: UpstreamPool, app: Endpoint) -> Service:
        """Return the inbound stack: mesh -> local app."""
        # Innermost: the local app, over a keep-alive pool.
        service: Service = UpstreamLayer(pool, fixed=app)
        # Server-side faults: the replica itself misbehaves, so callers' resilience reacts.
        service = FaultLayer(
            service, self.faults, lambda request: self.faults.inbound(), self._rng("fault-inbound")
        )
        # Authorization before anything reaches the app (or spends a fault's delay on it).
        if self.config.authorization:
            service = AuthorizationLayer(
                service, self.config.authorization, self.telemetry.counters
            )
        # The verified caller goes to the app in x-forwarded-client-cert; a forged one never.
        service = PeerIdentityLayer(service, lambda: self.spiffe_id)
        # Ids, metrics and the access log, as reported by the destination.
        service = TelemetryLayer(
            service,
            workload=self.config.name,
            reporter="destination",
            telemetry=self.telemetry,
            access_log=self.access_log,
            rng=self._rng("request-id-inbound"),
        )
        # Outermost: counts requests in flight, so a shutdown can drain them.
        return DrainLayer(service, self.in_flight)

    def stats(self) -> dict[str, Any]:
        """Return the counters and gauges of ``GET /stats``."""
        counters: dict[str, Any] = dict(sorted(self.telemetry.all_counters().items()))
        counters.update(sorted(self.telemetry.gauges().items()))
        return {"workload": self.config.name, "counters": counters}

    async def run(
        self, *, task_status: trio.TaskStatus[SidecarAddresses] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve the admin, inbound and outbound listeners until cancelled."""
        config = self.config
        async with trio.open_nursery() as nursery:
            app_pool = mesh_pool = UpstreamPool(self.network, nursery)
            self._pools.append(app_pool)
            # Toxics and partitions act on the bytes under TLS, as Toxiproxy between two hosts:
            # inbound for faults on this replica, outbound for edge faults to a destination.
            inbound_raw, mesh_raw = self._toxic_networks(nursery)
            inbound_network: Network = inbound_raw
            mesh_pool = UpstreamPool(mesh_raw, nursery)
            self._pools.append(mesh_pool)
            if config.mtls_mode != "DISABLE":
                self.tls = self._start_tls(nursery)
                # Istio's auto mTLS: every destination has a sidecar, so calls always use mTLS.
                mesh_network = TlsNetwork(
                    mesh_raw,
                    self.tls,
                    expected=self._identities.get,
                    counters=self.telemetry.counters,
                    prefix="cluster.outbound",
                    cleartext=self.tls_cleartext,
                )
                inbound_network = TlsNetwork(
                    inbound_raw,
                    self.tls,
                    mode=config.mtls_mode,
                    counters=self.telemetry.counters,
                    prefix="listener.inbound",
                    cleartext=self.tls_cleartext,
                )
                self._pools.remove(mesh_pool)
                mesh_pool = UpstreamPool(mesh_network, nursery)
                self._pools.append(mesh_pool)

            async def listen(
                endpoint: Endpoint, handler: Handler, network: Network = self.network
            ) -> Endpoint:
                async def on_connection(stream: trio.abc.Stream) -> None:
                    # Looked up once per connection; the codec puts it on every request.
                    await serve_http(stream, handler, peer=peer_identity(stream))

                bound: Endpoint = await nursery.start(network.serve, endpoint, on_connection)
                return bound

            admin = await listen(config.admin, AdminApi(self))
            inbound = outbound = None
            if config.inbound_listen is not None and config.inbound_app is not None:
                inbound = await listen(
                    config.inbound_listen,
                    self.build_inbound(app_pool, config.inbound_app),
                    inbound_network,
                )
            if config.outbound_listen is not None:
                outbound = await listen(config.outbound_listen, self.build_outbound(mesh_pool))
            self.ready = True
            task_status.started(SidecarAddresses(admin, inbound, outbound))

    def _toxic_networks(self, nursery: trio.Nursery) -> tuple[ToxicNetwork, ToxicNetwork]:
        """Return the inbound and outbound networks that carry connection-level faults."""
        destinations = {endpoint: name
                        for name, endpoints in self.config.destinations.items()
                        for endpoint in endpoints}  # fmt: skip
        networks = tuple(
            ToxicNetwork(
                self.network,
                self.faults,
                rng=self._rng(purpose),
                spawn=nursery.start_soon,
                destination_of=destination_of,
                counters=self.telemetry.counters,
            )
            for purpose, destination_of in (
                ("toxics-inbound", lambda endpoint: None),
                ("toxics-outbound", destinations.get),
            )
        )
        for network in networks:
            self.faults.on_change(network.changed)
        return networks[0], networks[1]

    def _issue(self, authority: CertificateAuthority) -> WorkloadCertificate:
        # A certificate fault (certExpired, wrongIdentity, untrustedCa) holds across rotations.
        rule = self.faults.certificate()
        return fault_certificate(
            authority,
            rule.certificate if rule is not None else None,
            self.spiffe_id,
            lifetime_s=self.config.cert_lifetime_s,
            impersonates=rule.impersonates if rule is not None else None,
        )

    def _start_tls(self, nursery: trio.Nursery) -> WorkloadTls:
        """Issue this workload's certificate from the CA folder and keep rotating it."""
        assert self.config.mtls_ca is not None  # the config reader requires it with mtls on
        authority = CertificateAuthority.load(Path(self.config.mtls_ca))
        tls = WorkloadTls(self._issue(authority), issued_at_s=trio.current_time())
        nursery.start_soon(
            rotate_forever, tls, lambda: self._issue(authority), self.config.cert_lifetime_s
        )
        presented = [self.faults.certificate()]

        def swap_on_fault() -> None:
            # A certificate fault added or removed swaps the certificate for new connections.
            rule = self.faults.certificate()
            if rule != presented[0]:
                presented[0] = rule
                tls.replace(self._issue(authority), issued_at_s=trio.current_time())

        self.faults.on_change(swap_on_fault)
        return tls
