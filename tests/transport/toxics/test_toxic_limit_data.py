"""The limit_data toxic: the connection closes once the limit has passed."""

from __future__ import annotations

import trio
from toxickit import read_all, toxic_pair, toxic_rule

from meshcore.policy.toxics import LimitDataToxic


async def test_the_connection_closes_at_the_limit(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair(toxic_rule(LimitDataToxic(5))) as pair:
        start = trio.current_time()
        await pair.server.send_all(b"abc")
        assert await pair.client.receive_some() == b"abc"
        await trio.sleep(1)
        await pair.server.send_all(b"defgh")
        assert await read_all(pair.client) == [(start + 1, b"de")]


async def test_toxicity_draws_per_connection(autojump_clock: trio.abc.Clock) -> None:
    acted = 0
    for seed in range(20):
        async with toxic_pair(toxic_rule(LimitDataToxic(1), toxicity=0.5), seed=seed) as pair:
            await pair.server.send_all(b"ab")
            await pair.server.aclose()
            received = b"".join(d for _, d in await read_all(pair.client))
            acted += received == b"a"
    assert 0 < acted < 20
