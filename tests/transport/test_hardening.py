"""The HTTP/1.1 server's refusals: smuggling, oversized or slow header blocks, in virtual time."""

from __future__ import annotations

import trio
import trio.testing
from http_codecs import Codec

from meshcore.model import Request, Response
from meshcore.transport.codec import HEADER_READ_TIMEOUT_S, MAX_HEADERS


class _App:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, request: Request) -> Response:
        self.seen.append(request.target)
        return Response(200, body=b"ok")


async def _exchange(codec: Codec, data: bytes, app: _App | None = None) -> bytes:
    """Send ``data``, keep the connection open, and read until the server closes it."""
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(codec.serve, server, app or _App())
        await client.send_all(data)
        received = b""
        while chunk := await client.receive_some():
            received += chunk
    return received


async def test_obs_fold_is_400_and_never_reaches_the_app(codec: Codec) -> None:
    app = _App()
    received = await _exchange(codec, b"GET /a HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", app)
    assert received.startswith(b"HTTP/1.1 400 ")
    assert b"obs-fold" in received
    assert app.seen == []


async def test_conflicting_content_lengths_are_400(codec: Codec) -> None:
    received = await _exchange(
        codec, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    )
    assert received.startswith(b"HTTP/1.1 400 ")


async def test_smuggled_request_after_ambiguous_framing_is_never_served(codec: Codec) -> None:
    app = _App()
    smuggle = (
        b"POST /front HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    received = await _exchange(codec, smuggle, app)
    assert received.startswith(b"HTTP/1.1 400 ")
    assert received.count(b"HTTP/1.1") == 1  # answered once, then closed
    assert app.seen == []


async def test_header_count_limit_is_431(codec: Codec) -> None:
    def request(count: int) -> bytes:
        headers = b"".join(b"X-%d: v\r\n" % i for i in range(count - 2))
        return b"GET / HTTP/1.1\r\nHost: a\r\n" + headers + b"Connection: close\r\n\r\n"

    assert (await _exchange(codec, request(MAX_HEADERS))).startswith(b"HTTP/1.1 200 ")
    assert (await _exchange(codec, request(MAX_HEADERS + 1))).startswith(b"HTTP/1.1 431 ")


async def test_slow_headers_get_408_at_the_timeout(
    codec: Codec, autojump_clock: trio.abc.Clock
) -> None:
    app = _App()
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(codec.serve, server, app)
        await trio.sleep(500)  # an idle keep-alive connection is not timed
        await client.send_all(b"GET / HTTP/1.1\r\n")
        started = trio.current_time()
        await trio.sleep(HEADER_READ_TIMEOUT_S - 1)
        await client.send_all(b"Host: a\r\n")  # trickling bytes does not reset the clock
        received = b""
        while chunk := await client.receive_some():
            received += chunk
        assert received.startswith(b"HTTP/1.1 408 ")
        assert trio.current_time() - started == HEADER_READ_TIMEOUT_S
        assert app.seen == []


async def test_keep_alive_requests_after_an_idle_pause_are_served(
    codec: Codec,
    autojump_clock: trio.abc.Clock,
) -> None:
    app = _App()
    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(codec.serve, server, app)
        for path in (b"/one", b"/two"):
            await client.send_all(b"GET " + path + b" HTTP/1.1\r\nHost: a\r\n\r\n")
            assert (await client.receive_some()).startswith(b"HTTP/1.1 200 ")
            await trio.sleep(3 * HEADER_READ_TIMEOUT_S)
        await client.aclose()
    assert app.seen == ["/one", "/two"]
