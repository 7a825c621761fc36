"""The synthetic service's sleep steps: the sleep function it is given, and precise sleeps."""

from __future__ import annotations

import random

import trio

from harness.asgi import asgi_handler
from harness.distributions import Fixed
from harness.experiment import ServiceSpec, SleepStep
from harness.services import SyntheticService, precise_sleep
from meshcore.model import Endpoint, Request
from meshcore.transport.memory import MemoryNetwork


class FakeSleeper:
    """Sleeps with trio's timers and records what it was asked, as a timerfd sleeper would."""

    made: list[FakeSleeper] = []

    def __init__(self) -> None:
        self.deadlines: list[float] = []
        self.closed = False
        FakeSleeper.made.append(self)

    async def sleep_until(self, deadline: float) -> None:
        self.deadlines.append(deadline)
        await trio.sleep_until(deadline)

    def close(self) -> None:
        self.closed = True


async def test_precise_sleep_uses_a_fresh_sleeper_per_sleep_and_closes_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    FakeSleeper.made.clear()
    sleep = precise_sleep(FakeSleeper)
    start = trio.current_time()
    await sleep(0.004)
    with trio.move_on_after(0.001):
        await sleep(1.0)  # cancelled: its sleeper is closed all the same
    assert [s.deadlines for s in FakeSleeper.made] == [[start + 0.004], [start + 1.004]]
    assert all(s.closed for s in FakeSleeper.made)
    assert trio.current_time() - start == 0.005


async def test_sleep_steps_run_on_the_sleep_function_given(autojump_clock: trio.abc.Clock) -> None:
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)

    spec = ServiceSpec(
        name="backend",
        script=(SleepStep(Fixed(0.002)), SleepStep(Fixed(0.003))),
        response_size_bytes=3,
    )
    app = SyntheticService(
        spec,
        rng=random.Random(1),
        network=MemoryNetwork(),
        outbound=Endpoint("127.0.0.1", 1),
        sleep=sleep,
    )
    handle = asgi_handler(app, Endpoint("127.0.0.1", 2))
    response = await handle(Request("GET", "/", (("host", "backend"),), b""))
    assert (response.status, response.body) == (200, b"xxx")
    assert asked == [0.002, 0.003]
