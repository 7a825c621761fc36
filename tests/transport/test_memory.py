"""The in-memory network: trio's stream contract, latency between hosts, pause and crash."""

from __future__ import annotations

import random
from itertools import accumulate

import pytest
import trio
import trio.testing

from meshcore.errors import ConnectFailure
from meshcore.model import Endpoint
from meshcore.transport.memory import MemoryHost, MemoryNetwork

SERVER = Endpoint("server", 80)


async def _pair(
    nursery: trio.Nursery, network: MemoryNetwork, host: MemoryHost | None = None
) -> tuple[trio.abc.Stream, trio.abc.Stream]:
    """Return (client, server) ends of one connection to a listener on ``host``."""
    accepted: trio.MemorySendChannel[trio.abc.Stream]
    accepted, inbox = trio.open_memory_channel[trio.abc.Stream](1)

    async def handler(stream: trio.abc.Stream) -> None:
        await accepted.send(stream)
        await trio.sleep_forever()

    serve = host.serve if host is not None else network.serve
    endpoint = await nursery.start(serve, Endpoint("server", 0), handler)
    client = await network.connect(endpoint)
    return client, await inbox.receive()


async def test_streams_keep_trios_half_closeable_stream_contract() -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:

        async def maker() -> tuple[trio.abc.HalfCloseableStream, trio.abc.HalfCloseableStream]:
            client, server = await _pair(nursery, network)
            assert isinstance(client, trio.abc.HalfCloseableStream)
            assert isinstance(server, trio.abc.HalfCloseableStream)
            return client, server

        await trio.testing.check_half_closeable_stream(maker, None)
        nursery.cancel_scope.cancel()


async def test_latency_between_hosts_costs_a_round_trip_to_connect_and_one_way_per_chunk(
    autojump_clock: trio.abc.Clock,
) -> None:
    network = MemoryNetwork(latency_s=0.005)
    server_host = network.host("server")
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        client, server = await _pair(nursery, network, server_host)
        assert trio.current_time() - start == pytest.approx(0.010)  # SYN, SYN-ACK
        sent = trio.current_time()
        await client.send_all(b"ping")
        assert await server.receive_some() == b"ping"
        assert trio.current_time() - sent == pytest.approx(0.005)
        await client.send_eof()  # type: ignore[attr-defined]
        eof_sent = trio.current_time()
        assert await server.receive_some() == b""
        assert trio.current_time() - eof_sent == pytest.approx(0.005)
        nursery.cancel_scope.cancel()


async def test_jitter_varies_each_trip_by_a_seeded_uniform_draw_without_reordering(
    autojump_clock: trio.abc.Clock,
) -> None:
    network = MemoryNetwork(latency_s=0.005, jitter_s=0.004, rng=random.Random(7))
    draws = random.Random(7)  # the same seed draws the same trips, in the same order

    def trip() -> float:
        return 0.005 + draws.uniform(-0.004, 0.004)

    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        client, server = await _pair(nursery, network, network.host("server"))
        assert trio.current_time() - start == pytest.approx(trip() + trip())  # SYN, SYN-ACK
        sent = trio.current_time()
        trips = [trip() for _ in range(6)]
        assert trips != sorted(trips)  # some chunk drew a shorter trip than the one before it
        for chunk in b"abcdef":
            await client.send_all(bytes([chunk]))
        received, arrivals = b"", []
        while len(received) < 6:
            received += await server.receive_some(1)
            arrivals.append(trio.current_time() - sent)
        assert received == b"abcdef"
        # A chunk waits for the one before it, as on a TCP stream.
        assert arrivals == pytest.approx(list(accumulate(trips, max)))
        nursery.cancel_scope.cancel()


def test_jitter_without_a_seeded_rng_is_refused() -> None:
    with pytest.raises(ValueError, match="seeded rng"):
        MemoryNetwork(latency_s=0.001, jitter_s=0.001)


async def test_connections_inside_one_host_have_no_latency(autojump_clock: trio.abc.Clock) -> None:
    network = MemoryNetwork(latency_s=0.005)
    pod = network.host("pod")
    async with trio.open_nursery() as nursery:
        endpoint = await nursery.start(pod.serve, Endpoint("app", 0), _echo)
        start = trio.current_time()
        stream = await pod.connect(endpoint)
        await stream.send_all(b"x")
        assert await stream.receive_some() == b"x"
        assert trio.current_time() == start
        nursery.cancel_scope.cancel()


async def _echo(stream: trio.abc.Stream) -> None:
    async with stream:
        async for data in stream:
            await stream.send_all(data)


async def test_a_refused_connect_with_latency_takes_a_round_trip(
    autojump_clock: trio.abc.Clock,
) -> None:
    network = MemoryNetwork(latency_s=0.002)
    start = trio.current_time()
    with pytest.raises(ConnectFailure, match="refused"):
        await network.connect(SERVER)
    assert trio.current_time() - start == pytest.approx(0.004)


async def test_a_paused_host_accepts_connections_but_answers_after_resume(
    autojump_clock: trio.abc.Clock,
) -> None:
    network = MemoryNetwork()
    host = network.host("server")
    async with trio.open_nursery() as nursery:
        endpoint = await nursery.start(host.serve, SERVER, _echo)
        established = await network.connect(endpoint)
        host.pause()
        late = await network.connect(endpoint)  # the kernel completes it into the backlog
        await established.send_all(b"a")
        await late.send_all(b"b")
        nursery.start_soon(_resume_after, host, 3.0)
        start = trio.current_time()
        assert await established.receive_some() == b"a"
        assert await late.receive_some() == b"b"
        assert trio.current_time() - start == pytest.approx(3.0)
        nursery.cancel_scope.cancel()


async def _resume_after(host: MemoryHost, delay_s: float) -> None:
    await trio.sleep(delay_s)
    host.resume()


async def test_a_crashed_host_refuses_connects_and_closes_its_connections() -> None:
    network = MemoryNetwork()
    host = network.host("server")
    async with trio.open_nursery() as nursery:
        client, _ = await _pair(nursery, network, host)
        host.crash()
        assert await client.receive_some() == b""  # the kernel closed the dead process's socket
        with pytest.raises(trio.BrokenResourceError):
            await client.send_all(b"too late")
        with pytest.raises(ConnectFailure, match="refused"):
            await network.connect(Endpoint("server", 20000))
        nursery.cancel_scope.cancel()
    # The cancelled listener did not take anything else with it: the port can serve again.
    async with trio.open_nursery() as nursery:
        endpoint = await nursery.start(host.serve, Endpoint("server", 20000), _echo)
        stream = await network.connect(endpoint)
        await stream.send_all(b"again")
        assert await stream.receive_some() == b"again"
        nursery.cancel_scope.cancel()
