"""The upstream pool: keep-alive reuse, stale connections dropped, idle timeout."""

from __future__ import annotations

import trio

from meshcore.model import Endpoint, Request, Response
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
