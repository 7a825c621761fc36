"""HTTP/1.1 framing over memory streams (and one real socket), for both codecs."""

from __future__ import annotations

import gc

import pytest
import trio
import trio.testing
from http_codecs import CODECS, Codec

from meshcore.errors import UpstreamReset
from meshcore.model import Endpoint, Request, Response
from meshcore.transport.client import request_once
from meshcore.transport.llhttp import encode_request, encode_response
from meshcore.transport.network import TcpNetwork


async def _echo(request: Request) -> Response:
    return Response(200, (("x-method", request.method),), request.body)


async def _raw_exchange(codec: Codec, data: bytes) -> bytes:
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(codec.serve, server, _echo)
        await client.send_all(data)
        received = b""
        while chunk := await client.receive_some(65536):
            received += chunk
    return received


async def _scripted_upstream(stream: trio.abc.Stream, answer: bytes, close: bool) -> None:
    """Read one request head, answer ``answer`` verbatim, and close if ``close``."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += await stream.receive_some()
    await stream.send_all(answer)
    if close:
        await stream.aclose()


async def _client_exchange(
    codec: Codec, request: Request, answer: bytes, *, close: bool = False
) -> tuple[Response | UpstreamReset, bool]:
    """Return the client's response to ``answer`` (or the reset it raised) and reusability."""
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_scripted_upstream, server, answer, close)
        conn = codec.client(client)
        try:
            response: Response | UpstreamReset = await conn.round_trip(request, host="x")
        except UpstreamReset as error:
            response = error
    return response, conn.reusable


@pytest.mark.parametrize("client_codec", sorted(CODECS))
async def test_keep_alive_serves_several_requests_on_one_connection(
    codec: Codec, client_codec: str
) -> None:
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(codec.serve, server, _echo)
        conn = CODECS[client_codec].client(client)
        for body in (b"one", b"", b"three"):
            response = await conn.round_trip(Request("POST", "/", body=body), host="x")
            assert response.status == 200
            assert response.body == body
            assert response.header("content-length") == str(len(body))
            assert conn.reusable
        await conn.aclose()


async def test_content_length_with_transfer_encoding_is_400(codec: Codec) -> None:
    received = await _raw_exchange(
        codec,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    assert received.startswith(b"HTTP/1.1 400 ")


async def test_oversized_header_block_is_431(codec: Codec) -> None:
    received = await _raw_exchange(codec, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 70_000)
    assert received.startswith(b"HTTP/1.1 431 ")


async def test_garbage_is_400(codec: Codec) -> None:
    received = await _raw_exchange(codec, b"NOT HTTP AT ALL\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 400 ")


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", b"400"),  # no Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", b"501"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", b"400"),
    ],
)
async def test_malformed_heads_are_refused(codec: Codec, head: bytes, status: bytes) -> None:
    assert (await _raw_exchange(codec, head)).startswith(b"HTTP/1.1 " + status + b" ")


async def test_pipelined_requests_are_answered_in_order_then_the_bad_one(codec: Codec) -> None:
    received = await _raw_exchange(
        codec,
        b"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\none"
        b"GET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    assert received.count(b"HTTP/1.1 200 ") == 2
    assert received.index(b"one") < received.rindex(b"x-method: GET")
    received = await _raw_exchange(
        codec, b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nX\r\n\r\n"
    )
    assert received.startswith(b"HTTP/1.1 200 ")
    assert received.count(b"HTTP/1.1 400 ") == 1


async def test_http_1_0_and_connection_close_end_the_connection(codec: Codec) -> None:
    for head in (
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ):
        # The request after it is never read: the server closes after one answer.
        received = await _raw_exchange(codec, head + b"GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
        assert received.count(b"HTTP/1.1 200 ") == 1, head


async def test_the_llhttp_server_frames_bodiless_answers() -> None:
    assert encode_response(Response(204, (("content-length", "3"),), b"")) == (
        b"HTTP/1.1 204 No Content\r\n\r\n"
    )
    assert encode_response(Response(304, (("etag", "x"),))) == (
        b"HTTP/1.1 304 Not Modified\r\netag: x\r\n\r\n"
    )
    # An answer to HEAD keeps the length the upstream announced, and sends no body.
    head = encode_response(Response(200, (("content-length", "42"),)), head=True)
    assert head == b"HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n"
    local = encode_response(Response(404, body=b"nope"), head=True)
    assert local == b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\n"
    with pytest.raises(ValueError, match="line break"):
        encode_response(Response(200, (("x", "a\r\nset-cookie: b"),)))
    with pytest.raises(ValueError, match="line break"):
        encode_request(Request("GET", "/ HTTP/1.1\r\nx: y"), host="a")


async def test_a_head_request_gets_no_body(codec: Codec) -> None:
    received = await _raw_exchange(
        codec, b"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    assert received.startswith(b"HTTP/1.1 200 ")
    assert received.endswith(b"\r\n\r\n")


async def test_llhttp_serves_an_upgrade_request_plainly_then_closes() -> None:
    received = await _raw_exchange(
        CODECS["llhttp"],
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    assert received.startswith(b"HTTP/1.1 200 ")
    assert received.count(b"HTTP/1.1") == 1


async def test_llhttp_refuses_an_upgrade_request_with_a_body() -> None:
    received = await _raw_exchange(
        CODECS["llhttp"],
        b"POST / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nConnection: upgrade\r\n"
        b"Content-Length: 30\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    )
    assert received.startswith(b"HTTP/1.1 400 ")
    assert received.count(b"HTTP/1.1") == 1


@pytest.mark.parametrize(
    ("answer", "body", "reusable"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", b"ok", True),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            b"ok",
            True,
        ),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", b"ok", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b"", True),
        (b"HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n", b"", True),
        (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok", b"ok", False),
        (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", b"ok", False),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil the close", b"until the close", False),
    ],
)
async def test_the_client_reads_every_framing(
    codec: Codec, answer: bytes, body: bytes, reusable: bool
) -> None:
    response, reused = await _client_exchange(codec, Request("GET", "/"), answer, close=True)
    assert isinstance(response, Response)
    assert response.body == body
    assert reused is reusable


async def test_the_client_reads_no_body_after_head(codec: Codec) -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n"
    response, reusable = await _client_exchange(codec, Request("HEAD", "/"), answer)
    assert isinstance(response, Response)
    assert (response.status, response.body, response.header("content-length")) == (200, b"", "42")
    assert reusable


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nok",  # closed mid-body
        b"HTTP/1.1 2",  # closed mid-head
        b"",  # closed before answering
        b"SMTP ready\r\n\r\n",
    ],
)
async def test_the_client_reports_a_broken_exchange_as_a_reset(codec: Codec, answer: bytes) -> None:
    response, reusable = await _client_exchange(codec, Request("GET", "/"), answer, close=True)
    assert isinstance(response, UpstreamReset)
    assert not reusable


async def test_over_a_real_socket(codec: Codec) -> None:
    network = TcpNetwork()
    async with trio.open_nursery() as nursery:

        async def handler(stream: trio.abc.Stream) -> None:
            await codec.serve(stream, _echo)

        bound = await nursery.start(network.serve, Endpoint("127.0.0.1", 0), handler)
        assert bound.port != 0
        response = await request_once(network, bound, Request("PUT", "/x", body=b"hello"))
        assert (response.status, response.body, response.header("x-method")) == (
            200,
            b"hello",
            "PUT",
        )
        nursery.cancel_scope.cancel()


async def test_a_client_connection_reads_each_response_after_a_head(codec: Codec) -> None:
    # The llhttp client keeps its parser across exchanges; after a HEAD, whose announced body
    # never comes, the next response must not be read as that body.
    answers = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n",
        b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        b"HTTP/1.1 202 Accepted\r\ncontent-length: 3\r\n\r\nyes",
    ]
    client, server = trio.testing.memory_stream_pair()

    async def upstream() -> None:
        received = b""
        for answer in answers:
            while b"\r\n\r\n" not in received:
                received += await server.receive_some()
            received = received.partition(b"\r\n\r\n")[2]
            await server.send_all(answer)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(upstream)
        conn = codec.client(client)
        got = [
            await conn.round_trip(Request(method, "/"), host="x")
            for method in ("HEAD", "GET", "GET")
        ]
    assert [(r.status, r.body) for r in got] == [(200, b""), (201, b"ok"), (202, b"yes")]
    assert conn.reusable


async def test_llhttp_keep_alive_exchanges_leave_no_cyclic_garbage() -> None:
    # Objects in a reference cycle wait for the cycle collector, whose passes stall a busy
    # process: a client connection and its exchanges must be freed by reference counting alone.
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(CODECS["llhttp"].serve, server, _echo)
        conn = CODECS["llhttp"].client(client)
        request = Request("GET", "/", (("host", "a"),))
        await conn.round_trip(request, host="a")
        gc.collect()
        gc.disable()
        try:
            for _ in range(20):
                await conn.round_trip(request, host="a")
            del conn  # and the connection's own objects go with it
            assert gc.collect() == 0
        finally:
            gc.enable()
        nursery.cancel_scope.cancel()
