"""Sleepers: trio's in virtual time, the timerfd one on the real clock."""

from __future__ import annotations

import pytest
import trio

from harness.pacing import TimerfdSleeper, TrioSleeper, precise_sleepers

needs_timerfd = pytest.mark.skipif(
    precise_sleepers() is TrioSleeper, reason="timerfd is Linux only"
)


async def test_trio_sleeper_follows_the_virtual_clock(autojump_clock: trio.abc.Clock) -> None:
    sleeper = TrioSleeper()
    start = trio.current_time()
    await sleeper.sleep_until(start + 2.5)
    assert trio.current_time() == start + 2.5
    sleeper.close()


@needs_timerfd
async def test_timerfd_sleeper_never_wakes_before_its_deadline() -> None:
    sleeper = TimerfdSleeper()
    try:
        for delay in (0.0002, 0.001, 0.0):
            deadline = trio.current_time() + delay
            await sleeper.sleep_until(deadline)
            assert trio.current_time() >= deadline
        # A deadline already passed returns at once (a checkpoint only).
        await sleeper.sleep_until(trio.current_time() - 1)
    finally:
        sleeper.close()


@needs_timerfd
async def test_a_cancelled_timerfd_sleep_leaves_nothing_behind() -> None:
    sleeper = TimerfdSleeper()
    try:
        with trio.move_on_after(0.001):
            await sleeper.sleep_until(trio.current_time() + 0.05)
        # The 50 ms timer was re-armed by this sleep, so it cannot end it early.
        deadline = trio.current_time() + 0.06
        await sleeper.sleep_until(deadline)
        assert trio.current_time() >= deadline
    finally:
        sleeper.close()
    sleeper.close()  # closing twice is fine
