"""A sidecar between an in-memory client and app, in virtual time."""

from __future__ import annotations

import json

import pytest
import trio

from meshcore.config import read_sidecar_config
from meshcore.model import Endpoint, Request, Response
from meshcore.sidecar import Sidecar, SidecarAddresses
from meshcore.transport.client import request_once
from meshcore.transport.http1 import serve_http
from meshcore.transport.memory import MemoryNetwork

APP = Endpoint("app", 8080)
BACKENDS = (Endpoint("backend-0", 8080), Endpoint("backend-1", 8080))


async def _echo_app(request: Request) -> Response:
    await trio.sleep(0.010)
    return Response(200, (("x-path", request.target),), b"hello " + request.host.encode())


async def _start(
    nursery: trio.Nursery, network: MemoryNetwork, **extra: object
) -> tuple[Sidecar, SidecarAddresses]:
    async def serve_app(stream: trio.abc.Stream) -> None:
        await serve_http(stream, _echo_app)

    for endpoint in (APP, *BACKENDS):
        await nursery.start(network.serve, endpoint, serve_app)
    config = read_sidecar_config(
        {
            "name": "frontend",
            "admin": "sidecar:15000",
            "outbound": {"listen": "sidecar:15001"},
            "inbound": {"listen": "sidecar:15006", "app": "app:8080"},
            "destinations": {"backend": {"endpoints": [str(e) for e in BACKENDS], **extra}},
        }
    )
    sidecar = Sidecar(config, network)
    addresses: SidecarAddresses = await nursery.start(sidecar.run)
    return sidecar, addresses


async def test_outbound_routes_by_host_and_balances(autojump_clock: trio.abc.Clock) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        sidecar, addresses = await _start(nursery, network, loadBalancer={"simple": "ROUND_ROBIN"})
        assert addresses.outbound is not None
        upstreams = []
        for _ in range(4):
            started = trio.current_time()
            response = await request_once(
                network, addresses.outbound, Request("GET", "/x", (("host", "backend"),))
            )
            assert response.status == 200
            assert trio.current_time() - started == pytest.approx(0.010, abs=1e-9)
            upstreams.append(response.header("x-path"))
        assert upstreams == ["/x"] * 4
        counters = sidecar.stats()["counters"]
        assert counters["cluster.outbound|backend.upstream_rq_2xx"] == 4
        # Round robin over two endpoints, and keep-alive: one connection per endpoint.
        assert counters["upstream_cx_total"] == 2
        nursery.cancel_scope.cancel()


async def test_unknown_host_is_404_nr(autojump_clock: trio.abc.Clock) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        _, addresses = await _start(nursery, network)
        assert addresses.outbound is not None
        response = await request_once(
            network, addresses.outbound, Request("GET", "/", (("host", "nowhere"),))
        )
        assert response.status == 404
        nursery.cancel_scope.cancel()


async def test_fault_added_by_admin_delays_inbound(autojump_clock: trio.abc.Clock) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        _, addresses = await _start(nursery, network)
        assert addresses.inbound is not None
        fault = {"name": "slow", "delay": {"fixed": "100ms", "percent": 100}}
        added = await request_once(
            network,
            addresses.admin,
            Request("POST", "/faults", (("host", "admin"),), json.dumps(fault).encode()),
        )
        assert added.status == 201
        started = trio.current_time()
        response = await request_once(
            network, addresses.inbound, Request("GET", "/", (("host", "x"),))
        )
        assert response.status == 200
        assert trio.current_time() - started == pytest.approx(0.110, abs=1e-9)
        removed = await request_once(
            network, addresses.admin, Request("DELETE", "/faults/slow", (("host", "admin"),))
        )
        assert removed.status == 204
        started = trio.current_time()
        await request_once(network, addresses.inbound, Request("GET", "/", (("host", "x"),)))
        assert trio.current_time() - started == pytest.approx(0.010, abs=1e-9)
        nursery.cancel_scope.cancel()


async def test_unreachable_endpoint_is_503_uf(autojump_clock: trio.abc.Clock) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        config = read_sidecar_config(
            {
                "name": "a",
                "admin": "a:15000",
                "outbound": {"listen": "a:15001"},
                "destinations": {"gone": {"endpoints": ["gone:1"]}},
            }
        )
        addresses = await nursery.start(Sidecar(config, network).run)
        response = await request_once(
            network, addresses.outbound, Request("GET", "/", (("host", "gone"),))
        )
        assert response.status == 503
        assert b"connection failure" in response.body
        nursery.cancel_scope.cancel()


async def test_admin_metrics_config_and_bad_faults(autojump_clock: trio.abc.Clock) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        _, addresses = await _start(nursery, network)
        assert addresses.outbound is not None
        await request_once(network, addresses.outbound, Request("GET", "/", (("host", "backend"),)))
        metrics = await request_once(network, addresses.admin, Request("GET", "/metrics"))
        assert metrics.status == 200
        assert (
            b'istio_requests_total{connection_security_policy="none",destination_service_name='
            b'"backend",destination_workload="backend",reporter="source",response_code="200",'
            b'response_flags="-",source_workload="frontend"} 1.0'
        ) in metrics.body
        assert b"istio_request_duration_milliseconds_bucket" in metrics.body
        config = json.loads(
            (await request_once(network, addresses.admin, Request("GET", "/config"))).body
        )
        assert config["policies"]["backend"]["loadBalancer"] == {"simple": "LEAST_REQUEST"}
        assert config["policies"]["backend"]["retries"]["attempts"] == 2  # Istio's default
        bad = {"name": "x", "delay": {"fixed": "soon"}}
        refused = await request_once(
            network, addresses.admin, Request("POST", "/faults", body=json.dumps(bad).encode())
        )
        assert refused.status == 400
        assert b"delay.fixed" in refused.body
        listed = await request_once(network, addresses.admin, Request("GET", "/faults"))
        assert json.loads(listed.body) == []
        nursery.cancel_scope.cancel()
