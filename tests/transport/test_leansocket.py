"""The TCP stream over real sockets: trio's stream contract, HTTP, errors, peeking, the pool,
the reset toxic."""

from __future__ import annotations

import contextlib
import random
import socket
import struct

import pytest
import trio
import trio.testing

from meshcore.errors import ConnectFailure
from meshcore.layers.fault import FaultTable
from meshcore.model import Endpoint, Request, Response
from meshcore.policy.faults import FaultRule
from meshcore.policy.toxics import ResetPeerToxic, ToxicSpec
from meshcore.transport.leansocket import LeanSocketStream
from meshcore.transport.llhttp import LlhttpClientConnection, serve_http
from meshcore.transport.network import TcpNetwork, readable_now
from meshcore.transport.pool import UpstreamPool
from meshcore.transport.toxic import ToxicNetwork


async def _socketpair() -> tuple[LeanSocketStream, LeanSocketStream]:
    left, right = socket.socketpair()
    return LeanSocketStream(left), LeanSocketStream(right)


async def _clogged_socketpair() -> tuple[LeanSocketStream, LeanSocketStream]:
    """A pair whose send buffers are full both ways: a send blocks until the peer reads."""
    pair = await _socketpair()
    for end in pair:  # small buffers fill fast
        end.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
        end.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    for end in pair:
        with contextlib.suppress(BlockingIOError):
            while True:
                end.socket.send(b"x" * 65536)
    return pair


async def test_the_stream_keeps_trios_half_closeable_stream_contract() -> None:
    await trio.testing.check_half_closeable_stream(_socketpair, _clogged_socketpair)


async def _tcp_pair(
    network: TcpNetwork, nursery: trio.Nursery
) -> tuple[LeanSocketStream, LeanSocketStream]:
    """Return a connected (client, server) pair over loopback TCP, both ends lean streams."""
    send, receive = trio.open_memory_channel[trio.abc.Stream](1)

    async def handler(stream: trio.abc.Stream) -> None:
        await send.send(stream)
        await trio.sleep_forever()

    endpoint = await nursery.start(network.serve, Endpoint("127.0.0.1", 0), handler)
    client = await network.connect(endpoint)
    server = await receive.receive()
    assert isinstance(client, LeanSocketStream)
    assert isinstance(server, LeanSocketStream)
    return client, server


async def test_both_ends_have_tcp_nodelay() -> None:
    async with trio.open_nursery() as nursery:
        for end in await _tcp_pair(TcpNetwork(), nursery):
            assert end.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            await end.aclose()
        nursery.cancel_scope.cancel()


async def _echo(request: Request) -> Response:
    return Response(200, body=request.target.encode() + request.body)


async def serve_http_ok(stream: trio.abc.Stream) -> None:
    await serve_http(stream, _echo)


async def test_http_round_trips_over_tcp() -> None:
    network = TcpNetwork()
    async with trio.open_nursery() as nursery:
        endpoint = await nursery.start(network.serve, Endpoint("127.0.0.1", 0), serve_http_ok)
        stream = await network.connect(endpoint)
        conn = LlhttpClientConnection(stream)
        for body in (b"", b"x" * 300_000):  # larger than one read and the socket buffers
            response = await conn.round_trip(Request("POST", "/a", body=body), host="x")
            assert (response.status, response.body) == (200, b"/a" + body)
        await conn.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await stream.send_all(b"x")
        with pytest.raises(trio.ClosedResourceError):
            await stream.receive_some()
        await stream.aclose()  # closing twice is fine
        nursery.cancel_scope.cancel()


async def test_a_refused_connection_is_a_connect_failure() -> None:
    network = TcpNetwork()
    [endpoint] = network.allocate("127.0.0.1", 1)  # nothing listens there
    with pytest.raises(ConnectFailure):
        await network.connect(endpoint)


def _reset(stream: LeanSocketStream) -> None:
    """Close with RST (SO_LINGER 0) instead of FIN."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.close()


async def test_a_reset_is_a_broken_resource_on_receive_and_send() -> None:
    async with trio.open_nursery() as nursery:
        client, server = await _tcp_pair(TcpNetwork(), nursery)
        await client.send_all(b"unread")  # unread data makes close() send a RST anyway
        _reset(server)
        with pytest.raises(trio.BrokenResourceError):
            await client.receive_some()
        with pytest.raises(trio.BrokenResourceError):
            await client.send_all(b"x")
        await client.aclose()
        nursery.cancel_scope.cancel()


async def test_closing_wakes_a_blocked_receiver_with_closed_resource() -> None:
    async with trio.open_nursery() as nursery:
        client, server = await _tcp_pair(TcpNetwork(), nursery)

        async def receive() -> None:
            with pytest.raises(trio.ClosedResourceError):
                await client.receive_some()

        async with trio.open_nursery() as inner:
            inner.start_soon(receive)
            await trio.testing.wait_all_tasks_blocked()
            await client.aclose()
        await server.aclose()
        nursery.cancel_scope.cancel()


async def test_readable_now_sees_bytes_end_of_stream_and_close() -> None:
    async with trio.open_nursery() as nursery:
        client, server = await _tcp_pair(TcpNetwork(), nursery)
        assert not readable_now(client)
        await server.send_all(b"x")
        with trio.fail_after(5):
            await trio.lowlevel.wait_readable(client.socket)
        assert readable_now(client)
        assert await client.receive_some() == b"x"
        assert not readable_now(client)
        await server.aclose()
        with trio.fail_after(5):
            await trio.lowlevel.wait_readable(client.socket)  # the FIN came in
        assert readable_now(client)
        await client.aclose()
        assert readable_now(client)  # closed: nothing more to read
        nursery.cancel_scope.cancel()


async def test_the_pool_drops_a_connection_the_upstream_closed() -> None:
    network = TcpNetwork()
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[Endpoint]) -> None:
            with scope:
                await network.serve(
                    Endpoint("127.0.0.1", 0), serve_http_ok, task_status=task_status
                )

        endpoint = await nursery.start(run)
        pool = UpstreamPool(network, nursery)
        assert (await pool.round_trip(endpoint, Request("GET", "/"))).status == 200
        assert (await pool.round_trip(endpoint, Request("GET", "/"))).status == 200
        assert pool.connections_opened == 1
        scope.cancel()  # the upstream restarts: its connections close
        await trio.testing.wait_all_tasks_blocked()
        await nursery.start(network.serve, endpoint, serve_http_ok)
        response = await pool.round_trip(endpoint, Request("GET", "/"))
        assert response.status == 200
        assert pool.connections_opened == 2
        await pool.aclose()
        nursery.cancel_scope.cancel()


async def test_a_reset_peer_toxic_resets_the_tcp_connection() -> None:
    table = FaultTable()
    table.add(FaultRule(name="reset", toxic=ToxicSpec(ResetPeerToxic(), "downstream", 1.0)))
    async with trio.open_nursery() as nursery:
        toxic = ToxicNetwork(TcpNetwork(), table, rng=random.Random(1), spawn=nursery.start_soon)
        send, receive = trio.open_memory_channel[trio.abc.Stream](1)

        async def handler(stream: trio.abc.Stream) -> None:
            await send.send(stream)
            await trio.sleep_forever()

        endpoint = await nursery.start(toxic.serve, Endpoint("127.0.0.1", 0), handler)
        client = await TcpNetwork().connect(endpoint)
        server = await receive.receive()
        await server.send_all(b"answer")  # the toxic resets instead (SO_LINGER 0: a RST)
        with pytest.raises(trio.BrokenResourceError):
            await client.receive_some()
        await client.aclose()
        nursery.cancel_scope.cancel()
