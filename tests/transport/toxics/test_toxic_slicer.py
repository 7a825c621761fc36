"""The slicer toxic: chunks cut into small pieces, a delay apart."""

from __future__ import annotations

import itertools
import random

import trio
from toxickit import read_all, toxic_pair, toxic_rule

from meshcore.policy.toxics import SlicerToxic


async def test_pieces_leave_a_delay_apart(autojump_clock: trio.abc.Clock) -> None:
    async with toxic_pair(toxic_rule(SlicerToxic(average_size=10, delay_s=0.001))) as pair:
        start = trio.current_time()
        await pair.server.send_all(b"x" * 40)
        await pair.server.aclose()
        chunks = await read_all(pair.client)
    assert [(round(t - start, 6), len(d)) for t, d in chunks] == [
        (0.0, 10),
        (0.001, 10),
        (0.002, 10),
        (0.003, 10),
    ]


def test_cuts_vary_around_the_average_and_cover_the_chunk() -> None:
    toxic = SlicerToxic(average_size=100, size_variation=20)
    cuts = toxic.cuts(0, 1000, random.Random(5))
    sizes = [b - a for a, b in itertools.pairwise(cuts)]
    assert cuts[0] == 0
    assert cuts[-1] == 1000
    assert sum(sizes) == 1000
    assert all(0 < size <= 120 for size in sizes)
