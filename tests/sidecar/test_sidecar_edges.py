"""Per-edge measurement of a whole sidecar (GET /stats/edges), in virtual time over memory."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from meshcore.config import read_sidecar_config
from meshcore.hdr import Recorder
from meshcore.model import Endpoint, Request, Response
from meshcore.sidecar import Sidecar
from meshcore.transport.client import request_once
from meshcore.transport.http1 import serve_http
from meshcore.transport.memory import MemoryNetwork

Behaviour = Callable[[Request], Awaitable[Response]]
ADMIN = Endpoint("client", 15000)
EDGE = "edge=client->backend"


def answer(code: int, delay_s: float = 0.0) -> Behaviour:
    async def behave(request: Request) -> Response:
        await trio.sleep(delay_s)
        return Response(code, body=b"x")

    return behave


class Mesh:
    """A sidecar ``client`` whose destination ``backend`` has programmable hosts."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.network = MemoryNetwork()
        self.nursery = nursery

    async def upstream(self, endpoint: Endpoint, behave: Behaviour) -> None:
        async def on_connection(stream: trio.abc.Stream) -> None:
            await serve_http(stream, behave)

        await self.nursery.start(self.network.serve, endpoint, on_connection)

    async def start(self, hosts: list[Endpoint], **policy: object) -> None:
        config = read_sidecar_config(
            {
                "name": "client",
                "admin": str(ADMIN),
                "outbound": {"listen": "client:15001"},
                "seed": 7,
                "destinations": {"backend": {"endpoints": [str(h) for h in hosts], **policy}},
            }
        )
        await self.nursery.start(Sidecar(config, self.network).run)

    async def call(self) -> Response:
        request = Request("GET", "/", (("host", "backend"),))
        return await request_once(self.network, Endpoint("client", 15001), request)

    async def admin(self, method: str, path: str) -> Response:
        return await request_once(self.network, ADMIN, Request(method, path))

    async def edges(self) -> dict[str, Any]:
        response = await self.admin("GET", "/stats/edges")
        assert response.status == 200
        document: dict[str, Any] = json.loads(response.body)
        return document

    async def recorded(self) -> Recorder:
        """The sidecar's edges decoded into a recorder, as the harness would."""
        recorder = Recorder()
        for name, intervals in (await self.edges())["scopes"].items():
            recorder.add_encoded(name, intervals)
        return recorder


async def test_latencies_per_interval_from_the_reset(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(Endpoint("b0", 80), answer(200, delay_s=0.025))
        await mesh.start([Endpoint("b0", 80)])
        await mesh.call()  # before the reset: not measured
        assert (await mesh.edges())["reset"] is False
        origin = trio.current_time()
        assert (await mesh.admin("POST", "/stats/edges/reset")).status == 204
        await trio.sleep(0.5)
        for _ in range(3):
            await mesh.call()
        await trio.sleep_until(origin + 1.2)
        for _ in range(2):
            await mesh.call()
        document = await mesh.edges()
        assert document["workload"] == "client"
        assert document["reset"] is True
        assert document["interval_s"] == 1.0
        recorder = await mesh.recorded()
        assert recorder.scope_names() == [f"{EDGE},status=2xx"]
        intervals = recorder.intervals(f"{EDGE},status=2xx")
        assert [(i.index, i.requests, i.errors) for i in intervals] == [(0, 3, 0), (1, 2, 0)]
        assert [dict(i.counters) for i in intervals] == [{"attempts": 3}, {"attempts": 2}]
        # Exactly the upstream's 25 ms each (the memory network adds no time).
        expected = Recorder()
        expected.record(("x",), 0.0, 0.025, error=False)
        stats = recorder.scope(f"{EDGE},status=2xx", 2.0)
        assert stats.percentile_ms(50) == stats.max_ms == expected.scope("x", 1.0).max_ms
        nursery.cancel_scope.cancel()


async def test_retries_count_attempts_and_5xx_are_errors(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(Endpoint("b0", 80), answer(503))
        await mesh.start([Endpoint("b0", 80)], retries={"attempts": 2, "retryOn": "5xx"})
        await mesh.admin("POST", "/stats/edges/reset")
        for _ in range(4):
            assert (await mesh.call()).status == 503
        stats = (await mesh.recorded()).scope(f"{EDGE},status=5xx", 1.0)
        assert (stats.requests, stats.errors) == (4, 4)
        assert stats.counters == {"attempts": 12}  # 1 try + 2 retries each
        nursery.cancel_scope.cancel()


async def test_ejections_are_counted_on_the_edge(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        hosts = [Endpoint("b0", 80), Endpoint("b1", 80)]
        await mesh.upstream(hosts[0], answer(503))
        await mesh.upstream(hosts[1], answer(200))
        await mesh.start(
            hosts,
            retries={"attempts": 1, "retryOn": "5xx"},
            loadBalancer={"simple": "ROUND_ROBIN"},
            outlierDetection={"consecutive5xxErrors": 1, "baseEjectionTime": "30s"},
        )
        await mesh.admin("POST", "/stats/edges/reset")
        for _ in range(10):
            assert (await mesh.call()).status == 200
        recorder = await mesh.recorded()
        # b0 answers 503 once, is ejected for 30 s and the retry goes to b1: 11 tries.
        assert recorder.scope(EDGE, 1.0).counters == {"ejections": 1}
        stats = recorder.scope(f"{EDGE},status=2xx", 1.0)
        assert (stats.requests, stats.counters) == (10, {"attempts": 11})
        nursery.cancel_scope.cancel()
