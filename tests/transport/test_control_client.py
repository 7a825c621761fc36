"""The control-plane client: kept-alive connections per endpoint, one retry when stale.

Against both server codecs (the sidecars' admin API is served by the llhttp one) on an
in-memory network with a one-way latency, under ``autojump_clock``: a connect costs a round
trip (2 x LATENCY), a request and its response one LATENCY each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from http_codecs import Codec

from meshcore.errors import ConnectFailure
from meshcore.model import Endpoint, Request, Response
from meshcore.transport.client import ControlClient
from meshcore.transport.memory import MemoryNetwork

ADMIN = Endpoint("sidecar", 15000)
LATENCY = 0.25  # one way; a power of two keeps the virtual instants exact
POST = Request("POST", "/faults", body=b"{}")


class Admin:
    """A fake admin API served with ``codec`` at ADMIN; restartable, counting its connections."""

    def __init__(
        self, network: MemoryNetwork, nursery: trio.Nursery, codec: Codec, answer_after_s: float
    ) -> None:
        self._network = network
        self._nursery = nursery
        self._codec = codec
        self._answer_after_s = answer_after_s
        self.accepted = 0
        self.closed_at: list[float] = []  # when each connection's server loop ended
        self._scope = trio.CancelScope()

    async def _answer(self, request: Request) -> Response:
        await trio.sleep(self._answer_after_s)
        return Response(201 if request.method == "POST" else 204)

    async def _connection(self, stream: trio.abc.Stream) -> None:
        self.accepted += 1
        await self._codec.serve(stream, self._answer)
        self.closed_at.append(trio.current_time())

    async def start(self) -> None:
        """Serve ADMIN until :meth:`stop`."""
        self._scope = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[Endpoint]) -> None:
            with self._scope:
                await self._network.serve(ADMIN, self._connection, task_status=task_status)

        await self._nursery.start(run)

    def stop(self) -> None:
        """Stop listening and close every connection, as a restarting sidecar does."""
        self._scope.cancel()


@asynccontextmanager
async def _serving(
    codec: Codec, *, answer_after_s: float = 0
) -> AsyncIterator[tuple[Admin, ControlClient]]:
    """Serve an :class:`Admin` on a network with LATENCY; yield it and a client."""
    network = MemoryNetwork(latency_s=LATENCY)
    async with trio.open_nursery() as nursery:
        admin = Admin(network, nursery, codec, answer_after_s)
        await admin.start()
        yield admin, ControlClient(network)
        nursery.cancel_scope.cancel()


async def test_a_second_request_costs_one_round_trip_not_a_connect_too(
    codec: Codec, autojump_clock: trio.abc.Clock
) -> None:
    async with _serving(codec) as (admin, client):
        start = trio.current_time()
        assert (await client.round_trip(ADMIN, POST)).status == 201
        assert trio.current_time() - start == 4 * LATENCY  # connect, request, response
        start = trio.current_time()
        assert (await client.round_trip(ADMIN, Request("DELETE", "/faults/f"))).status == 204
        assert trio.current_time() - start == 2 * LATENCY
        assert (client.connections_opened, admin.accepted) == (1, 1)


async def test_a_connection_opened_ahead_makes_the_first_request_one_round_trip(
    codec: Codec, autojump_clock: trio.abc.Clock
) -> None:
    async with _serving(codec) as (_admin, client):
        await client.connect(ADMIN)
        start = trio.current_time()
        await client.round_trip(ADMIN, POST)
        assert trio.current_time() - start == 2 * LATENCY
        assert client.connections_opened == 1


async def test_a_connection_the_server_closed_is_retried_once_on_a_fresh_one(
    codec: Codec, autojump_clock: trio.abc.Clock
) -> None:
    async with _serving(codec) as (admin, client):
        await client.round_trip(ADMIN, POST)
        admin.stop()  # the sidecar restarts: its connections close
        await trio.sleep(1)
        await admin.start()
        start = trio.current_time()
        assert (await client.round_trip(ADMIN, POST)).status == 201
        # The stale connection fails at once (its end-of-stream arrived long ago).
        assert trio.current_time() - start == 4 * LATENCY
        assert (client.connections_opened, admin.accepted) == (2, 2)


async def test_a_failure_on_a_fresh_connection_propagates(
    codec: Codec, autojump_clock: trio.abc.Clock
) -> None:
    async with _serving(codec) as (admin, client):
        await client.round_trip(ADMIN, POST)
        admin.stop()  # gone for good: the retry's connect is refused
        await trio.sleep(1)
        with pytest.raises(ConnectFailure):
            await client.round_trip(ADMIN, POST)
        assert client.connections_opened == 1


async def test_concurrent_requests_to_one_endpoint_each_get_a_connection(
    codec: Codec, autojump_clock: trio.abc.Clock
) -> None:
    async with _serving(codec, answer_after_s=1) as (admin, client):
        done: list[float] = []

        async def post() -> None:
            await client.round_trip(ADMIN, POST)
            done.append(trio.current_time())

        start = trio.current_time()
        async with trio.open_nursery() as posts:
            posts.start_soon(post)
            posts.start_soon(post)
        assert done == [start + 4 * LATENCY + 1] * 2  # side by side, not one after the other
        assert (client.connections_opened, admin.accepted) == (2, 2)
        async with trio.open_nursery() as posts:
            posts.start_soon(post)
            posts.start_soon(post)
        assert client.connections_opened == 2  # both idle connections reused


async def test_a_cancelled_request_does_not_leave_its_connection_idle(
    codec: Codec, autojump_clock: trio.abc.Clock
) -> None:
    async with _serving(codec, answer_after_s=1) as (_admin, client):
        with trio.move_on_after(2 * LATENCY + 0.5):  # connected, answer pending
            await client.round_trip(ADMIN, POST)
        await client.round_trip(ADMIN, POST)
        assert client.connections_opened == 2


async def test_aclose_closes_the_idle_connections(
    codec: Codec, autojump_clock: trio.abc.Clock
) -> None:
    async with _serving(codec) as (admin, client):
        async with client:
            await client.round_trip(ADMIN, POST)
            await client.connect(ADMIN)
            closed = trio.current_time()
        await trio.sleep(1)
        assert admin.closed_at == [closed + LATENCY] * 2  # each server read the client's close


async def test_a_connection_the_response_closes_is_not_kept(autojump_clock: trio.abc.Clock) -> None:
    network = MemoryNetwork(latency_s=LATENCY)
    accepted = 0

    async def close_after_answering(stream: trio.abc.Stream) -> None:
        nonlocal accepted
        accepted += 1
        async with stream:
            await stream.receive_some()
            await stream.send_all(b"HTTP/1.1 201 Created\r\nconnection: close\r\n\r\n")

    async with trio.open_nursery() as nursery:
        await nursery.start(network.serve, ADMIN, close_after_answering)
        client = ControlClient(network)
        for _ in range(2):
            start = trio.current_time()
            assert (await client.round_trip(ADMIN, POST)).status == 201
            assert trio.current_time() - start == 4 * LATENCY  # each time a fresh connection
        assert (client.connections_opened, accepted) == (2, 2)
        nursery.cancel_scope.cancel()
