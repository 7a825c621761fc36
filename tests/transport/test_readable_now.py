"""``readable_now``: looking at a stream without reading, as the pool does before a reuse.

TCP streams are looked at in ``test_leansocket.py``.
"""

from __future__ import annotations

import functools
import random

import trio

from meshcore.ca import CertificateAuthority, WorkloadCertificate
from meshcore.identity import spiffe_id
from meshcore.layers.fault import FaultTable
from meshcore.model import Endpoint
from meshcore.transport.memory import MemoryNetwork
from meshcore.transport.network import Network, readable_now
from meshcore.transport.tls import TlsNetwork, WorkloadTls
from meshcore.transport.toxic import ToxicNetwork

SERVER = Endpoint("up", 80)


@functools.cache
def _cert(service: str) -> WorkloadCertificate:
    return _authority().issue(spiffe_id(service))


@functools.cache
def _authority() -> CertificateAuthority:
    return CertificateAuthority.create()


async def _accepted(
    network: Network,
    nursery: trio.Nursery,
    endpoint: Endpoint = SERVER,
    *,
    via: Network | None = None,
) -> tuple[trio.abc.Stream, trio.abc.Stream]:
    """Return a connected (client, server) pair: ``network`` serves, ``via`` (or it) connects."""
    send, receive = trio.open_memory_channel[trio.abc.Stream](1)

    async def handler(stream: trio.abc.Stream) -> None:
        await send.send(stream)
        await trio.sleep_forever()

    bound = await nursery.start(network.serve, endpoint, handler)
    client = await (via or network).connect(bound)
    return client, await receive.receive()


async def test_memory_stream_sees_bytes_and_eof_once_they_arrive(
    autojump_clock: trio.abc.Clock,
) -> None:
    network = MemoryNetwork(latency_s=0.5)
    async with trio.open_nursery() as nursery:
        client, server = await _accepted(network.host("server"), nursery, via=network)
        assert not readable_now(client)
        await server.send_all(b"x")
        assert not readable_now(client)  # still in flight
        await trio.sleep(0.5)
        assert readable_now(client)
        assert await client.receive_some() == b"x"
        assert not readable_now(client)
        await server.aclose()
        assert not readable_now(client)
        await trio.sleep(0.5)
        assert readable_now(client)  # the end-of-stream arrived
        await client.aclose()
        assert readable_now(client)  # a closed stream reads nothing more: dead
        nursery.cancel_scope.cancel()


async def test_tls_over_memory_sees_the_peer_close(autojump_clock: trio.abc.Clock) -> None:
    memory = MemoryNetwork()
    tls = TlsNetwork(memory, WorkloadTls(_cert("up")))
    async with trio.open_nursery() as nursery:
        client, server = await _accepted(tls, nursery)
        await client.send_all(b"ping")
        assert await server.receive_some() == b"ping"
        await server.send_all(b"pong")
        assert await client.receive_some() == b"pong"
        # No session tickets and nothing else: an idle TLS connection has nothing to read.
        await trio.sleep(1)
        assert not readable_now(client)
        await server.aclose()  # close_notify, then the end of stream
        assert readable_now(client)
        nursery.cancel_scope.cancel()


async def test_toxic_stream_looks_through_to_its_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    memory = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        toxic = ToxicNetwork(
            memory,
            FaultTable(),
            rng=random.Random(1),
            spawn=nursery.start_soon,
            destination_of=lambda endpoint: "up",
        )
        client, server = await _accepted(toxic, nursery)
        assert not readable_now(client)
        await server.send_all(b"x")
        assert readable_now(client)
        assert await client.receive_some() == b"x"
        assert not readable_now(client)
        await server.aclose()
        assert readable_now(client)
        nursery.cancel_scope.cancel()
