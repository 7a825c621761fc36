"""Sleepers and the precise clock: trio's timers in virtual time, precise ones on the real clock.

The real-clock tests assert only what must hold however busy the machine is: nobody wakes
before their deadline, wake-ups keep deadline order, and ready I/O ends a wait long before a
far deadline.
"""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Awaitable, Callable

import pytest
import trio

from harness import pacing
from harness.pacing import (
    ClockSleeper,
    PreciseClock,
    TimerfdSleeper,
    TrioSleeper,
    precise_clock,
    precise_sleepers,
)

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


needs_precise_clock = pytest.mark.skipif(precise_clock() is None, reason="ppoll and epoll only")


def _run_on_precise_clock(main: Callable[[PreciseClock], Awaitable[None]]) -> PreciseClock:
    clock = precise_clock()
    assert isinstance(clock, PreciseClock)
    trio.run(main, clock, clock=clock)
    return clock


@needs_precise_clock
def test_the_precise_clock_wakes_its_sleepers_in_order_and_never_early() -> None:
    woke: list[tuple[int, float, float]] = []

    async def sleeper(clock: PreciseClock, index: int, deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append((index, deadline, trio.current_time()))

    async def main(clock: PreciseClock) -> None:
        start = trio.current_time()
        # Far (epoll's coarse wait, then the fine one), near, equal deadlines, one passed.
        delays = (0.012, 0.0003, 0.002, 0.002, -1.0)
        async with trio.open_nursery() as nursery:
            for index, delay in enumerate(delays):
                nursery.start_soon(sleeper, clock, index, start + delay)

    _run_on_precise_clock(main)
    assert sorted(index for index, _, _ in woke) == [0, 1, 2, 3, 4]
    deadlines = [deadline for _, deadline, _ in woke]
    assert deadlines == sorted(deadlines)  # trio runs a batch in either order: ties may swap
    assert all(at >= deadline for _, deadline, at in woke)


@needs_precise_clock
def test_trio_timers_and_cancellation_work_on_the_precise_clock() -> None:
    async def main(clock: PreciseClock) -> None:
        deadline = trio.current_time() + 0.001
        await trio.sleep_until(deadline)  # trio's own timers, waited by the clock
        assert trio.current_time() >= deadline
        with trio.move_on_after(0.001) as scope:
            await clock.sleep_until(trio.current_time() + 60)
        assert scope.cancelled_caught
        # The cancelled sleep left no timer behind: nothing wakes this task but trio's.
        assert clock.next_timer() == math.inf

    _run_on_precise_clock(main)


@needs_precise_clock
def test_io_ends_the_precise_clocks_wait_before_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The clock's own wait (ppoll) for the whole 30 s: only ready I/O can end it early.
    monkeypatch.setattr(pacing, "_FINE_S", 60.0)
    near, far = socket.socketpair()

    async def main(clock: PreciseClock) -> None:
        deadline = trio.current_time() + 30
        async with trio.open_nursery() as nursery:
            nursery.start_soon(clock.sleep_until, deadline)
            threading.Timer(0.01, far.send, [b"x"]).start()
            await trio.lowlevel.wait_readable(near)
            assert trio.current_time() < deadline
            nursery.cancel_scope.cancel()

    with near, far:
        _run_on_precise_clock(main)


@needs_precise_clock
def test_precise_sleepers_follow_the_running_clock() -> None:
    assert precise_sleepers() is TimerfdSleeper  # outside a run: for trio's own clock

    async def main(clock: PreciseClock) -> None:
        sleeper = precise_sleepers()()
        assert isinstance(sleeper, ClockSleeper)
        deadline = trio.current_time() + 0.001
        await sleeper.sleep_until(deadline)
        assert trio.current_time() >= deadline
        sleeper.close()

    _run_on_precise_clock(main)
