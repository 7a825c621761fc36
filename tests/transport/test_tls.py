"""Mutual TLS over the in-memory network, in virtual time: real handshakes, no sockets."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Awaitable, Callable

import pytest
import trio

from meshcore.ca import CertificateAuthority, WorkloadCertificate
from meshcore.errors import TlsFailure, UpstreamReset
from meshcore.identity import spiffe_id
from meshcore.model import Endpoint, Request, Response
from meshcore.transport.http1 import ClientConnection, serve_http
from meshcore.transport.memory import MemoryNetwork
from meshcore.transport.network import Network
from meshcore.transport.tls import (
    HANDSHAKE_TIMEOUT_S,
    ClearTlsStream,
    TlsNetwork,
    TlsStream,
    WorkloadTls,
    peer_identity,
)

SERVER = Endpoint("payments", 9000)


@pytest.fixture(params=[False, True], ids=["encrypted", "cleartext"])
def cleartext(request: pytest.FixtureRequest) -> bool:
    """Run each test with TLS records, and with simulate mode's handshake-only TLS."""
    return bool(request.param)


@functools.cache
def _ca() -> CertificateAuthority:
    return CertificateAuthority.create()


@functools.cache
def _cert(service: str) -> WorkloadCertificate:
    return _ca().issue(spiffe_id(service))


def _tls(service: str) -> WorkloadTls:
    return WorkloadTls(_cert(service))


async def _serve_identity(
    nursery: trio.Nursery,
    network: Network,
    tls: WorkloadTls,
    cleartext: bool,
    mode: str = "STRICT",
) -> TlsNetwork:
    """Serve SERVER; each response names the peer the server saw (or ``plain``)."""
    server = TlsNetwork(network, tls, mode=mode, cleartext=cleartext)

    async def on_connection(stream: trio.abc.Stream) -> None:
        peer = peer_identity(stream)

        async def handler(request: Request) -> Response:
            return Response(200, body=(peer.spiffe_id if peer else "plain").encode())

        await serve_http(stream, handler)

    await nursery.start(server.serve, SERVER, on_connection)
    return server


def _client(network: Network, service: str, expected: str | None, cleartext: bool) -> TlsNetwork:
    return TlsNetwork(
        network, _tls(service), expected=lambda endpoint: expected, cleartext=cleartext
    )


async def _get(connect: Callable[[], Awaitable[trio.abc.Stream]]) -> Response:
    conn = ClientConnection(await connect())
    try:
        return await conn.round_trip(Request("GET", "/"), host="payments")
    finally:
        await conn.aclose()


async def test_mutual_tls_carries_both_identities(
    autojump_clock: trio.abc.Clock, cleartext: bool
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        server = await _serve_identity(nursery, network, _tls("payments"), cleartext)
        client = _client(network, "checkout", spiffe_id("payments"), cleartext)
        stream = await client.connect(SERVER)
        assert isinstance(stream, ClearTlsStream if cleartext else TlsStream)
        peer = peer_identity(stream)
        assert peer is not None
        assert peer.spiffe_id == "spiffe://cluster.local/ns/default/sa/payments"
        assert peer.workload == "payments"
        assert len(peer.cert_sha256) == 64
        conn = ClientConnection(stream)
        for _ in range(3):  # one handshake, several requests
            response = await conn.round_trip(Request("GET", "/"), host="payments")
            assert response.body == b"spiffe://cluster.local/ns/default/sa/checkout"
        await conn.aclose()
        assert client.counters == {"tls.ssl.handshake": 1}
        assert server.counters == {"tls.ssl.handshake": 1}
        assert trio.current_time() == 0  # no timer was involved
        nursery.cancel_scope.cancel()


async def test_server_with_another_identity_fails_the_connection(
    autojump_clock: trio.abc.Clock,
    cleartext: bool,
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        await _serve_identity(nursery, network, _tls("inventory"), cleartext)
        client = _client(network, "checkout", spiffe_id("payments"), cleartext)
        with pytest.raises(TlsFailure, match=r"expected spiffe://.*/sa/payments, got .*/inventory"):
            await client.connect(SERVER)
        assert client.counters["tls.ssl.fail_verify_san"] == 1
        nursery.cancel_scope.cancel()


async def test_server_from_a_foreign_ca_fails_the_handshake(
    autojump_clock: trio.abc.Clock,
    cleartext: bool,
) -> None:
    network = MemoryNetwork()
    foreign = WorkloadTls(CertificateAuthority.create().issue(spiffe_id("payments")))
    async with trio.open_nursery() as nursery:
        await _serve_identity(nursery, network, foreign, cleartext)
        client = _client(network, "checkout", spiffe_id("payments"), cleartext)
        with pytest.raises(TlsFailure, match="certificate verify failed"):
            await client.connect(SERVER)
        assert client.counters == {"tls.ssl.connection_error": 1}
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("kind", ["foreign", "expired"])
async def test_strict_refuses_a_bad_client_certificate(
    autojump_clock: trio.abc.Clock, cleartext: bool, kind: str
) -> None:
    network = MemoryNetwork()
    if kind == "foreign":
        # Signed by another CA, while trusting the mesh's (the untrustedCa fault).
        foreign = CertificateAuthority.create().issue(spiffe_id("checkout"))
        certificate = dataclasses.replace(foreign, ca_pem=_ca().cert_pem)
    else:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        certificate = _ca().issue(spiffe_id("checkout"), now=past)
    async with trio.open_nursery() as nursery:
        server = await _serve_identity(nursery, network, _tls("payments"), cleartext)
        client = TlsNetwork(network, WorkloadTls(certificate), cleartext=cleartext)
        # TLS 1.3: the client's handshake ends before the server judged its certificate, so
        # the refusal arrives on the first read.
        with pytest.raises(UpstreamReset):
            await _get(functools.partial(client.connect, SERVER))
        assert server.counters == {"tls.ssl.connection_error": 1}
        nursery.cancel_scope.cancel()


async def _raw_reply(network: Network, data: bytes) -> bytes:
    stream = await network.connect(SERVER)
    await stream.send_all(data)
    received = b""
    try:
        while chunk := await stream.receive_some():
            received += chunk
    except trio.BrokenResourceError:
        pass
    await stream.aclose()
    return received


async def test_strict_gives_plain_http_nothing(
    autojump_clock: trio.abc.Clock, cleartext: bool
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        await _serve_identity(nursery, network, _tls("payments"), cleartext)
        assert await _raw_reply(network, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n") == b""
        nursery.cancel_scope.cancel()


async def test_permissive_serves_plain_and_mutual_tls_on_one_port(
    autojump_clock: trio.abc.Clock,
    cleartext: bool,
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        server = await _serve_identity(
            nursery, network, _tls("payments"), cleartext, mode="PERMISSIVE"
        )
        plain = await _get(functools.partial(network.connect, SERVER))
        assert plain.body == b"plain"
        client = _client(network, "checkout", spiffe_id("payments"), cleartext)
        secure = await _get(functools.partial(client.connect, SERVER))
        assert secure.body == spiffe_id("checkout").encode()
        assert server.counters == {"tls.ssl.plaintext": 1, "tls.ssl.handshake": 1}
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("mode", ["STRICT", "PERMISSIVE"])
async def test_a_silent_client_is_closed_after_the_handshake_timeout(
    autojump_clock: trio.abc.Clock, cleartext: bool, mode: str
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        await _serve_identity(nursery, network, _tls("payments"), cleartext, mode=mode)
        stream = await network.connect(SERVER)
        assert await stream.receive_some() == b""
        assert trio.current_time() == HANDSHAKE_TIMEOUT_S
        nursery.cancel_scope.cancel()


async def test_rotation_changes_the_certificate_of_new_connections_only(
    autojump_clock: trio.abc.Clock,
    cleartext: bool,
) -> None:
    network = MemoryNetwork()
    server_tls = WorkloadTls(_ca().issue(spiffe_id("payments")))
    async with trio.open_nursery() as nursery:
        await _serve_identity(nursery, network, server_tls, cleartext)
        client = _client(network, "checkout", spiffe_id("payments"), cleartext)
        before = await client.connect(SERVER)
        server_tls.replace(_ca().issue(spiffe_id("payments")), issued_at_s=trio.current_time())
        after = await client.connect(SERVER)
        first, second = peer_identity(before), peer_identity(after)
        assert first is not None
        assert second is not None
        assert first.spiffe_id == second.spiffe_id
        assert first.cert_sha256 != second.cert_sha256
        # The connection made before the rotation still works.
        response = await ClientConnection(before).round_trip(Request("GET", "/"), host="x")
        assert response.status == 200
        await before.aclose()
        await after.aclose()
        assert server_tls.rotations == 1
        nursery.cancel_scope.cancel()


async def test_a_request_right_behind_the_handshake_is_served(
    autojump_clock: trio.abc.Clock, cleartext: bool
) -> None:
    # With latency, the client's last handshake message and its first request arrive at the
    # server together: the bytes behind the handshake are the request, not lost.
    network = MemoryNetwork(latency_s=0.001)
    async with trio.open_nursery() as nursery:
        await _serve_identity(nursery, network, _tls("payments"), cleartext)
        client = _client(network, "checkout", spiffe_id("payments"), cleartext)
        response = await _get(functools.partial(client.connect, SERVER))
        assert response.body == spiffe_id("checkout").encode()
        # Connect (1 round trip), handshake (1 round trip), then the request's round trip.
        assert trio.current_time() == pytest.approx(0.006)
        nursery.cancel_scope.cancel()


async def test_cleartext_carries_the_data_as_it_is(autojump_clock: trio.abc.Clock) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        await _serve_identity(nursery, network, _tls("payments"), cleartext=True)
        client = _client(network, "checkout", spiffe_id("payments"), cleartext=True)
        stream = await client.connect(SERVER)
        assert isinstance(stream, ClearTlsStream)
        # Plain HTTP on the connection under the handshake, answered with the verified peer.
        await stream.inner.send_all(b"GET / HTTP/1.1\r\nhost: payments\r\n\r\n")
        reply = await stream.inner.receive_some()
        assert reply.startswith(b"HTTP/1.1 200 ")
        assert reply.endswith(spiffe_id("checkout").encode())
        await stream.aclose()
        nursery.cancel_scope.cancel()
