"""The timeout toxic: nothing passes; the connection closes after the timeout."""

from __future__ import annotations

import trio
from toxickit import toxic_pair, toxic_rule

from meshcore.policy.toxics import TimeoutToxic


async def test_data_is_held_and_the_connection_closes(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair(toxic_rule(TimeoutToxic(1.0), "upstream")) as pair:
        start = trio.current_time()
        await pair.client.send_all(b"GET")
        assert await pair.server.receive_some() == b""
        assert trio.current_time() - start == 1.0
        assert await pair.client.receive_some() == b""  # the caller sees the close too


async def test_removing_it_lets_held_data_through(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair(toxic_rule(TimeoutToxic(0.0), "upstream")) as pair:
        start = trio.current_time()
        await pair.client.send_all(b"GET")

        async def remove_later() -> None:
            await trio.sleep(3)
            pair.table.remove("timeout")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(remove_later)
            assert await pair.server.receive_some() == b"GET"
        assert trio.current_time() - start == 3


async def test_it_acts_on_connections_already_open(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair() as pair:
        await trio.sleep(1)
        pair.table.add(toxic_rule(TimeoutToxic(0.5), "downstream"))
        start = trio.current_time()
        await pair.server.send_all(b"late")
        assert await pair.client.receive_some() == b""
        assert trio.current_time() - start == 0.5


async def test_added_while_a_reader_waits_it_closes_on_time(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair() as pair:
        start = trio.current_time()

        async def add_later() -> None:
            await trio.sleep(1)
            pair.table.add(toxic_rule(TimeoutToxic(0.5), "upstream"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(add_later)
            assert await pair.server.receive_some() == b""  # nothing came: closed at 1 + 0.5
        assert trio.current_time() - start == 1.5


async def test_added_while_a_reader_waits_it_holds_what_comes(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with toxic_pair() as pair:
        start = trio.current_time()

        async def later() -> None:
            await trio.sleep(1)
            pair.table.add(toxic_rule(TimeoutToxic(0.0), "upstream"))  # holds, never closes
            await trio.sleep(1)
            await pair.client.send_all(b"GET")
            await trio.sleep(1)
            pair.table.remove("timeout")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            assert await pair.server.receive_some() == b"GET"
        assert trio.current_time() - start == 3
