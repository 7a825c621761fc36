"""HTTP/1.1 framing over memory streams (and one real socket)."""

from __future__ import annotations

import trio
import trio.testing

from meshcore.model import Endpoint, Request, Response
from meshcore.transport.client import request_once
from meshcore.transport.http1 import ClientConnection, serve_http
from meshcore.transport.network import TcpNetwork


async def _echo(request: Request) -> Response:
    return Response(200, (("x-method", request.method),), request.body)


async def _raw_exchange(data: bytes) -> bytes:
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_http, server, _echo)
        await client.send_all(data)
        received = b""
        while chunk := await client.receive_some(65536):
            received += chunk
    return received


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_http, server, _echo)
        conn = ClientConnection(client)
        for body in (b"one", b"", b"three"):
            response = await conn.round_trip(Request("POST", "/", body=body), host="x")
            assert response.status == 200
            assert response.body == body
            assert response.header("content-length") == str(len(body))
            assert conn.reusable
        await conn.aclose()


async def test_content_length_with_transfer_encoding_is_400() -> None:
    received = await _raw_exchange(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    assert received.startswith(b"HTTP/1.1 400 ")


async def test_oversized_header_block_is_431() -> None:
    received = await _raw_exchange(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 70_000)
    assert received.startswith(b"HTTP/1.1 431 ")


async def test_garbage_is_400() -> None:
    received = await _raw_exchange(b"NOT HTTP AT ALL\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 400 ")


async def test_over_a_real_socket() -> None:
    network = TcpNetwork()
    async with trio.open_nursery() as nursery:

        async def handler(stream: trio.abc.Stream) -> None:
            await serve_http(stream, _echo)

        bound = await nursery.start(network.serve, Endpoint("127.0.0.1", 0), handler)
        assert bound.port != 0
        response = await request_once(network, bound, Request("PUT", "/x", body=b"hello"))
        assert (response.status, response.body, response.header("x-method")) == (
            200,
            b"hello",
            "PUT",
        )
        nursery.cancel_scope.cancel()
