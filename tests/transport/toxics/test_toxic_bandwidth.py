"""The bandwidth toxic: rate-limited, large chunks leave in 100 ms slices."""

from __future__ import annotations

import trio
from toxickit import read_all, toxic_pair, toxic_rule

from meshcore.policy.toxics import BandwidthToxic


async def test_a_large_chunk_leaves_in_slices(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair(toxic_rule(BandwidthToxic(10_000))) as pair:  # 10KB/s
        start = trio.current_time()
        await pair.server.send_all(b"x" * 2500)
        await pair.server.aclose()
        chunks = await read_all(pair.client)
    assert [(round(t - start, 6), len(d)) for t, d in chunks] == [
        (0.1, 1000),
        (0.2, 1000),
        (0.25, 500),
    ]


async def test_chunks_queue_behind_each_other(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair(toxic_rule(BandwidthToxic(1000), "upstream")) as pair:
        start = trio.current_time()
        await pair.client.send_all(b"a" * 50)

        async def later() -> None:
            await trio.sleep(0.01)
            await pair.client.send_all(b"b" * 50)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            assert await pair.server.receive_some() == b"a" * 50
        assert round(trio.current_time() - start, 6) == 0.05
        assert await pair.server.receive_some() == b"b" * 50
        assert round(trio.current_time() - start, 6) == 0.1
