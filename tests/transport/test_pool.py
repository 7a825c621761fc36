"""The upstream pool: keep-alive reuse, stale connections dropped, idle timeout, limits."""

from __future__ import annotations

import trio

from meshcore.model import Endpoint, Request, Response
from meshcore.policy.limits import ConnectionPoolSettings
from meshcore.transport.http1 import serve_http
from meshcore.transport.memory import MemoryNetwork
from meshcore.transport.pool import UpstreamPool

UPSTREAM = Endpoint("up", 80)


async def _ok(request: Request) -> Response:
    return Response(200, body=b"ok")


async def _serve(network: MemoryNetwork, nursery: trio.Nursery) -> trio.CancelScope:
    """Serve UPSTREAM in its own cancel scope, so a test can 'restart' it."""
    scope = trio.CancelScope()

    async def run(task_status: trio.TaskStatus[Endpoint]) -> None:
        with scope:

            async def handler(stream: trio.abc.Stream) -> None:
                await serve_http(stream, _ok)

            await network.serve(UPSTREAM, handler, task_status=task_status)

    await nursery.start(run)
    return scope


async def test_connections_are_reused(autojump_clock: trio.abc.Clock) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        await _serve(network, nursery)
        pool = UpstreamPool(network, nursery)
        for _ in range(5):
            assert (await pool.round_trip(UPSTREAM, Request("GET", "/"))).status == 200
        assert pool.connections_opened == 1
        nursery.cancel_scope.cancel()


async def test_a_connection_the_upstream_closed_is_not_reused(
    autojump_clock: trio.abc.Clock,
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        server = await _serve(network, nursery)
        pool = UpstreamPool(network, nursery)
        await pool.round_trip(UPSTREAM, Request("GET", "/"))
        server.cancel()  # the upstream restarts: its connections close
        await trio.sleep(1)
        await _serve(network, nursery)
        response = await pool.round_trip(UPSTREAM, Request("GET", "/"))
        assert response.status == 200
        assert pool.connections_opened == 2
        nursery.cancel_scope.cancel()


async def test_idle_connections_close_after_the_idle_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        await _serve(network, nursery)
        pool = UpstreamPool(network, nursery, idle_timeout_s=60)
        await pool.round_trip(UPSTREAM, Request("GET", "/"))
        await trio.sleep(59)
        await pool.round_trip(UPSTREAM, Request("GET", "/"))
        assert pool.connections_opened == 1
        await trio.sleep(61)
        await pool.round_trip(UPSTREAM, Request("GET", "/"))
        assert pool.connections_opened == 2
        nursery.cancel_scope.cancel()


async def _serve_recording_closes(
    network: MemoryNetwork, nursery: trio.Nursery, endpoint: Endpoint, closed: list[float]
) -> None:
    """Serve ``endpoint``; note the virtual time at which each connection's client closed it."""

    async def handler(stream: trio.abc.Stream) -> None:
        await serve_http(stream, _ok)
        closed.append(trio.current_time())

    await nursery.start(network.serve, endpoint, handler)


async def test_the_sweeper_closes_each_connection_at_its_own_idle_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    network = MemoryNetwork()
    slow, fast = Endpoint("slow", 80), Endpoint("fast", 80)
    closed: dict[str, list[float]] = {"slow": [], "fast": []}
    async with trio.open_nursery() as nursery:
        await _serve_recording_closes(network, nursery, slow, closed["slow"])
        await _serve_recording_closes(network, nursery, fast, closed["fast"])
        pool = UpstreamPool(network, nursery)
        pool.configure(
            {
                "slow": ConnectionPoolSettings(idle_timeout_s=100),
                "fast": ConnectionPoolSettings(idle_timeout_s=10),
            }
        )
        start = trio.current_time()
        await pool.round_trip(slow, Request("GET", "/", destination="slow"))
        await trio.sleep(1)
        # Released after the slow one but expiring first: the sweeper wakes earlier for it.
        await pool.round_trip(fast, Request("GET", "/", destination="fast"))
        await trio.sleep(200)
        assert [t - start for t in closed["fast"]] == [11]
        assert [t - start for t in closed["slow"]] == [100]
        nursery.cancel_scope.cancel()


async def test_max_connections_closes_the_longest_idle_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    network = MemoryNetwork()
    closed: list[float] = []
    endpoints = [Endpoint("up", port) for port in (1, 2, 3)]
    async with trio.open_nursery() as nursery:
        for endpoint in endpoints:
            await _serve_recording_closes(network, nursery, endpoint, closed)
        pool = UpstreamPool(network, nursery)
        pool.configure({"up": ConnectionPoolSettings(max_connections=2)})
        for endpoint in endpoints:  # the third opens after closing the first, idle longest
            await pool.round_trip(endpoint, Request("GET", "/", destination="up"))
            await trio.sleep(1)
        assert pool.connections_opened == 3
        assert closed == [2]
        await pool.round_trip(endpoints[1], Request("GET", "/", destination="up"))
        assert pool.connections_opened == 3  # the second is still pooled
        nursery.cancel_scope.cancel()


async def test_a_connection_the_upstream_closed_is_not_reused_across_latency(
    autojump_clock: trio.abc.Clock,
) -> None:
    network = MemoryNetwork(latency_s=0.01)
    async with trio.open_nursery() as nursery:
        host = network.host("up")

        async def handler(stream: trio.abc.Stream) -> None:
            await serve_http(stream, _ok)

        await nursery.start(host.serve, UPSTREAM, handler)
        pool = UpstreamPool(network, nursery)
        await pool.round_trip(UPSTREAM, Request("GET", "/"))
        host.crash()
        await nursery.start(host.serve, UPSTREAM, handler)  # restarted at once
        await trio.sleep(0.01)  # the end of stream of the old connection has arrived
        response = await pool.round_trip(UPSTREAM, Request("GET", "/"))
        assert response.status == 200
        assert pool.connections_opened == 2
        nursery.cancel_scope.cancel()
