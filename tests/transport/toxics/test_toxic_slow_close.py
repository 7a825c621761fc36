"""The slow_close toxic: data passes, the close is held back."""

from __future__ import annotations

import trio
from toxickit import read_all, toxic_pair, toxic_rule

from meshcore.policy.toxics import SlowCloseToxic


async def test_the_close_arrives_late(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair(toxic_rule(SlowCloseToxic(0.5))) as pair:
        start = trio.current_time()
        await pair.server.send_all(b"bye")
        await pair.server.aclose()
        assert await read_all(pair.client) == [(start, b"bye")]
        assert trio.current_time() - start == 0.5


async def test_upstream_end_of_stream_is_held(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair(toxic_rule(SlowCloseToxic(0.2), "upstream")) as pair:
        start = trio.current_time()
        await pair.client.aclose()
        assert await pair.server.receive_some() == b""
        assert trio.current_time() - start == 0.2
