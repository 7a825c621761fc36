"""The reset_peer toxic: the first data is dropped and the connection reset after a timeout."""

from __future__ import annotations

import pytest
import trio
from toxickit import toxic_pair, toxic_rule

from meshcore.policy.toxics import ResetPeerToxic


async def test_reset_after_the_timeout(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair(toxic_rule(ResetPeerToxic(0.3), "upstream")) as pair:
        start = trio.current_time()
        await pair.client.send_all(b"GET")
        with pytest.raises(trio.BrokenResourceError):
            await pair.server.receive_some()
        assert trio.current_time() - start == 0.3
        assert await pair.client.receive_some() == b""


async def test_reset_at_once_without_timeout(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair(toxic_rule(ResetPeerToxic())) as pair:
        start = trio.current_time()
        await pair.server.send_all(b"answer")
        assert await pair.client.receive_some() == b""
        assert trio.current_time() == start
