"""The latency toxic, in virtual time: chunks leave latency +/- jitter after they arrived."""

from __future__ import annotations

import random

import trio
from toxickit import read_all, toxic_pair, toxic_rule

from meshcore.policy.toxics import LatencyToxic, Step, ToxicState


async def test_downstream_chunks_overlap_in_flight(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair(toxic_rule(LatencyToxic(0.1))) as pair:
        start = trio.current_time()
        await pair.server.send_all(b"a")
        await trio.sleep(0.01)
        await pair.server.send_all(b"b")
        await pair.server.aclose()
        chunks = await read_all(pair.client)
    assert [(round(t - start, 6), d) for t, d in chunks] == [(0.1, b"a"), (0.11, b"b")]


async def test_upstream_delays_what_the_caller_sends(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair(toxic_rule(LatencyToxic(0.05), "upstream")) as pair:
        start = trio.current_time()
        await pair.client.send_all(b"GET")
        assert await pair.server.receive_some() == b"GET"
        assert trio.current_time() - start == 0.05


def test_jitter_stays_within_bounds_and_never_reorders() -> None:
    toxic, state, rng = LatencyToxic(0.1, 0.05), ToxicState(), random.Random(3)
    times = [toxic.on_data(state, i * 0.001, b"x", rng)[0].at for i in range(200)]
    assert times == sorted(times)
    assert all(t - i * 0.001 >= 0.05 or t == times[i - 1] for i, t in enumerate(times))
    assert toxic.on_eof(state, 0.0) == [Step(times[-1], kind="eof")]


async def test_added_while_a_reader_waits_it_delays_what_comes(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with toxic_pair() as pair:
        start = trio.current_time()

        async def later() -> None:
            await trio.sleep(1)
            pair.table.add(toxic_rule(LatencyToxic(0.5), "upstream"))
            await trio.sleep(1)
            await pair.client.send_all(b"GET")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            assert await pair.server.receive_some() == b"GET"
        assert trio.current_time() - start == 2.5
