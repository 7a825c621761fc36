"""The lean TLS stream: trio's stream contract over memory streams and over real sockets."""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from meshcore.ca import CertificateAuthority
from meshcore.identity import spiffe_id
from meshcore.transport.leansocket import LeanSocketStream
from meshcore.transport.network import readable_now
from meshcore.transport.tls import TlsStream, WorkloadTls

Pair = tuple[trio.abc.Stream, trio.abc.Stream]


@functools.cache
def _contexts() -> tuple[WorkloadTls, WorkloadTls]:
    authority = CertificateAuthority.create()
    return (
        WorkloadTls(authority.issue(spiffe_id("checkout"))),
        WorkloadTls(authority.issue(spiffe_id("payments"))),
    )


async def _tls_pair(
    transports: Callable[[], Awaitable[Pair]] | Pair,
) -> tuple[TlsStream, TlsStream]:
    """Return (client, server) TLS streams over a fresh transport pair, handshakes done."""
    left, right = transports if isinstance(transports, tuple) else await transports()
    client_tls, server_tls = _contexts()
    client = TlsStream(left, client_tls.client_context, server_side=False)
    server = TlsStream(right, server_tls.server_context, server_side=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        nursery.start_soon(server.do_handshake)
    return client, server


async def _memory() -> Pair:
    return trio.testing.memory_stream_pair()


async def _lockstep() -> Pair:
    # A send blocks until the peer receives: the "clogged" pair trio's own SSLStream tests use.
    return trio.testing.lockstep_stream_pair()


async def _sockets() -> Pair:
    left, right = socket.socketpair()
    return LeanSocketStream(left), LeanSocketStream(right)


@pytest.mark.parametrize("transports", [_memory, _sockets], ids=["memory", "sockets"])
async def test_the_stream_keeps_trios_two_way_stream_contract(
    transports: Callable[[], Awaitable[Pair]],
) -> None:
    await trio.testing.check_two_way_stream(
        functools.partial(_tls_pair, transports), functools.partial(_tls_pair, _lockstep)
    )


async def test_both_ends_see_the_verified_peer() -> None:
    client, server = await _tls_pair(_memory)
    assert client.peer is not None
    assert server.peer is not None
    assert client.peer.spiffe_id == spiffe_id("payments")
    assert server.peer.spiffe_id == spiffe_id("checkout")


async def test_a_close_notify_reads_as_end_of_stream_and_a_bare_close_as_broken() -> None:
    client, server = await _tls_pair(_memory)
    await client.send_all(b"bye")
    await client.aclose()  # close_notify, then the transport's end
    assert await server.receive_some() == b"bye"
    assert await server.receive_some() == b""
    assert await server.receive_some() == b""  # and stays so

    client, server = await _tls_pair(_memory)
    await client.transport.aclose()  # no close_notify: a truncation attack looks like this
    with pytest.raises(trio.BrokenResourceError):
        await server.receive_some()
    with pytest.raises(trio.BrokenResourceError):  # and stays broken
        await server.send_all(b"x")


async def test_readable_now_counts_decrypted_and_undecrypted_bytes() -> None:
    client, server = await _tls_pair(_sockets)
    assert not readable_now(server)
    await client.send_all(b"abc")
    await client.send_all(b"def")  # a second record behind the first
    assert readable_now(server)  # bytes on the transport
    assert await server.receive_some(1) == b"a"
    assert readable_now(server)  # "bc" decrypted, "def" not yet
    assert await server.receive_some() == b"bc"
    assert readable_now(server)  # the second record is in the incoming BIO
    assert await server.receive_some() == b"def"
    assert not readable_now(server)
    await server.aclose()
    assert readable_now(server)  # closed: a read returns at once
    await client.aclose()


async def test_a_failed_handshake_is_broken_with_the_ssl_error_as_cause() -> None:
    left, right = trio.testing.memory_stream_pair()
    foreign = WorkloadTls(CertificateAuthority.create().issue(spiffe_id("payments")))
    client = TlsStream(left, _contexts()[0].client_context, server_side=False)
    server = TlsStream(right, foreign.server_context, server_side=True)
    failures: dict[str, BaseException] = {}

    async def handshake(name: str, stream: TlsStream) -> None:
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as error:
            failures[name] = error
            await stream.transport.aclose()  # as TlsNetwork does after counting

    async with trio.open_nursery() as nursery:
        nursery.start_soon(handshake, "server", server)
        nursery.start_soon(handshake, "client", client)
    # The client refuses the server's certificate; the server sees the connection end.
    assert "certificate verify failed" in str(failures["client"].__cause__)
    assert isinstance(failures["server"].__cause__, ssl.SSLEOFError)
    with pytest.raises(trio.BrokenResourceError):
        await client.send_all(b"x")
