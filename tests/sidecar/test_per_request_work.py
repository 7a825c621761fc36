"""What the inbound path does once per connection instead of once per request gives the same."""

from __future__ import annotations

import dataclasses

import trio
import trio.testing

from meshcore.identity import PeerIdentity, principal_of, workload_of
from meshcore.layers.identity import XFCC_HEADER, PeerIdentityLayer
from meshcore.model import Endpoint, Request, Response
from meshcore.transport.llhttp import LlhttpClientConnection, serve_http

_PEER = PeerIdentity("spiffe://cluster.local/ns/default/sa/frontend", "ab12")


async def test_every_request_of_a_connection_carries_its_peer() -> None:
    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        return Response(200)

    client, server = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: serve_http(server, handler, peer=_PEER))
        conn = LlhttpClientConnection(client)
        for target in ("/a", "/b"):
            await conn.round_trip(Request("GET", target), host="backend")
        nursery.cancel_scope.cancel()
    assert [(r.target, r.peer) for r in seen] == [("/a", _PEER), ("/b", _PEER)]


class _Recorder:
    def __init__(self) -> None:
        self.requests: list[Request] = []

    async def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        return Response(200)


async def test_the_identity_layer_copies_a_request_only_to_change_its_headers() -> None:
    inner = _Recorder()
    own = ["spiffe://cluster.local/ns/default/sa/backend"]
    layer = PeerIdentityLayer(inner, lambda: own[0])
    plain = Request("GET", "/", (("host", "backend"),))
    forged = plain.with_header(XFCC_HEADER, "URI=spiffe://forged")
    other = PeerIdentity("spiffe://cluster.local/ns/default/sa/admin", "cd34")
    await layer(plain)
    await layer(forged)
    await layer(dataclasses.replace(plain, peer=_PEER))
    await layer(dataclasses.replace(forged, peer=_PEER))
    await layer(dataclasses.replace(plain, peer=other))
    own[0] = "spiffe://cluster.local/ns/default/sa/rotated"
    await layer(dataclasses.replace(plain, peer=other))
    assert inner.requests[0] is plain  # nothing to drop, nothing to add
    assert [r.header(XFCC_HEADER) for r in inner.requests] == [
        None,
        None,
        'By=spiffe://cluster.local/ns/default/sa/backend;Hash=ab12;Subject="";'
        "URI=spiffe://cluster.local/ns/default/sa/frontend",
        'By=spiffe://cluster.local/ns/default/sa/backend;Hash=ab12;Subject="";'
        "URI=spiffe://cluster.local/ns/default/sa/frontend",
        'By=spiffe://cluster.local/ns/default/sa/backend;Hash=cd34;Subject="";'
        "URI=spiffe://cluster.local/ns/default/sa/admin",
        'By=spiffe://cluster.local/ns/default/sa/rotated;Hash=cd34;Subject="";'
        "URI=spiffe://cluster.local/ns/default/sa/admin",
    ]
    assert all(sum(name == XFCC_HEADER for name, _ in r.headers) <= 1 for r in inner.requests)


def test_a_peer_derives_its_principal_and_workload_once_as_the_functions_do() -> None:
    for spiffe in (_PEER.spiffe_id, "", "spiffe://other.domain/ns/x/sa/", "not-a-spiffe-id"):
        peer = PeerIdentity(spiffe, "00")
        assert (peer.principal, peer.workload) == (principal_of(spiffe), workload_of(spiffe))
    assert PeerIdentity(_PEER.spiffe_id, "ab12") == _PEER
    assert repr(_PEER) == f"PeerIdentity(spiffe_id={_PEER.spiffe_id!r}, cert_sha256='ab12')"


def test_a_copy_changes_exactly_the_fields_named() -> None:
    request = Request("GET", "/x", (("host", "a"),), b"b", "a", Endpoint("h", 1), 2, "v1")
    request = dataclasses.replace(request, peer=_PEER)
    for field in dataclasses.fields(Request):
        value = object()
        copy = request.replace(**{field.name: value})
        for other in dataclasses.fields(Request):
            expected = value if other is field else getattr(request, other.name)
            assert getattr(copy, other.name) is expected
    for field in dataclasses.fields(Response):
        response = Response(201, (("a", "b"),), b"x", ("DI",), "h:1", "why")
        value = object()
        changed = response.replace(**{field.name: value})
        for other in dataclasses.fields(Response):
            expected = value if other is field else getattr(response, other.name)
            assert getattr(changed, other.name) is expected
