"""The open-loop schedule and generator, in virtual time over the memory network."""

from __future__ import annotations

import itertools
import random

import pytest
import trio

from harness.experiment import LoadSpec, Stage
from harness.load import LoadClient, OpenLoopGenerator, Sample, arrival_offsets, make_generator
from meshcore.model import Endpoint, Request, Response
from meshcore.transport.http1 import serve_http
from meshcore.transport.memory import MemoryNetwork

TARGET = Endpoint("frontend", 80)


def _load(rate: float, seconds: float, **extra: object) -> LoadSpec:
    return LoadSpec(target="frontend", stages=(Stage(seconds, rate),), start_rate_per_s=rate,
                    **extra)  # type: ignore[arg-type]  # fmt: skip


def test_constant_arrivals_are_evenly_spaced() -> None:
    offsets = list(arrival_offsets(_load(10, 2), 2.0, random.Random(0)))
    assert len(offsets) == 20
    assert offsets == pytest.approx([i / 10 for i in range(20)])


def test_poisson_arrivals_have_the_right_mean_rate_and_are_seeded() -> None:
    offsets = list(arrival_offsets(_load(1000, 10, arrival="poisson"), 10.0, random.Random(4)))
    assert 9700 < len(offsets) < 10300
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert len(set(round(g, 9) for g in gaps)) > 1000  # not evenly spaced
    again = list(arrival_offsets(_load(1000, 10, arrival="poisson"), 10.0, random.Random(4)))
    assert again == offsets


def test_a_ramp_follows_the_stages() -> None:
    ramp = LoadSpec(target="x", stages=(Stage(10, 100),), start_rate_per_s=0)
    offsets = list(arrival_offsets(ramp, 10.0, random.Random(0)))
    first_half = sum(1 for t in offsets if t < 5)
    # A linear ramp from 0 to 100/s sends a quarter of its ~500 requests in the first half.
    assert 110 < first_half < 140
    assert 480 < len(offsets) < 520


async def _run(
    load: LoadSpec, service_time_s: float, duration_s: float, drain_s: float = 5.0
) -> tuple[list[Sample], list[float]]:
    network = MemoryNetwork()
    samples: list[Sample] = []
    dropped: list[float] = []

    async def app(request: Request) -> Response:
        await trio.sleep(service_time_s)
        return Response(200, body=b"ok")

    async def handler(stream: trio.abc.Stream) -> None:
        await serve_http(stream, app)

    async with trio.open_nursery() as nursery:
        await nursery.start(network.serve, TARGET, handler)
        client = LoadClient(load, [TARGET], network)
        generator = make_generator(load, client, random.Random(0), samples.append, dropped.append)
        await generator.run(duration_s, drain_s=drain_s)
        nursery.cancel_scope.cancel()
    return samples, dropped


async def test_every_request_starts_on_time_against_a_fast_server(
    autojump_clock: trio.abc.Clock,
) -> None:
    samples, dropped = await _run(_load(100, 1, connections=8), 0.05, 1.0)
    assert dropped == []
    assert len(samples) == 100
    assert all(s.outcome == "2xx" for s in samples)
    assert all(s.lag_s == pytest.approx(0, abs=1e-9) for s in samples)
    assert all(s.latency_s == pytest.approx(0.05, abs=1e-9) for s in samples)


async def test_a_saturated_server_shows_in_latency_and_drops_not_in_the_schedule(
    autojump_clock: trio.abc.Clock,
) -> None:
    # 10 connections, 1 s per request, 100 requests a second for 2 s, then 4.5 s of drain:
    # the connections send a wave of 10 requests each second, 7 waves by 6.5 s; the 7th is
    # cut off by the end of the drain, and the other 130 requests are never sent.
    samples, dropped = await _run(_load(100, 2, connections=10), 1.0, 2.0, drain_s=4.5)
    assert len(samples) == 70
    assert sorted(dropped) == pytest.approx([i / 100 for i in range(70, 200)])
    by_intended = sorted(samples, key=lambda s: s.intended_s)
    # Every request takes 1 s once sent, but the k-th wave waited k seconds for a connection.
    assert all(s.uncorrected_s == pytest.approx(1.0, abs=1e-9) for s in by_intended[:60])
    assert [s.lag_s for s in by_intended[::10]] == pytest.approx(
        [wave - wave / 10 for wave in range(7)], abs=1e-9
    )
    # Connection k sends at n s + k * 10 ms in wave n, so the cut at 6.5 s catches wave 6
    # 500 - 10k ms into its second.
    cut = by_intended[60:]
    assert {s.outcome for s in cut} == {"timeout"}
    assert [s.uncorrected_s for s in cut] == pytest.approx([0.5 - k / 100 for k in range(10)])


async def test_a_frozen_server_shows_in_corrected_latency_only(
    autojump_clock: trio.abc.Clock,
) -> None:
    # wrk2's demonstration: one connection, 100/s, the server freezes from 1 s to 2 s.
    network = MemoryNetwork()
    samples: list[Sample] = []
    start = trio.current_time()

    async def app(request: Request) -> Response:
        now = trio.current_time() - start
        await trio.sleep((2.0 - now) if 1.0 <= now < 2.0 else 0.001)
        return Response(200)

    async def handler(stream: trio.abc.Stream) -> None:
        await serve_http(stream, app)

    load = _load(100, 3, connections=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.serve, TARGET, handler)
        client = LoadClient(load, [TARGET], network)
        await OpenLoopGenerator(load, client, random.Random(0), samples.append, print).run(3.0)
        nursery.cancel_scope.cancel()
    assert len(samples) == 300
    # The k-th request due during the freeze is answered at 2 s + k ms: its latency is
    # 1 s - 9k ms, over half a second for k = 0..55. Uncorrected, only the one request caught
    # in the freeze looks slow.
    assert sum(s.latency_s > 0.5 for s in samples) == 56
    assert sum(s.uncorrected_s > 0.5 for s in samples) == 1
    assert sorted(s.uncorrected_s for s in samples)[int(0.99 * 300)] < 0.01


async def test_requests_still_in_flight_after_the_drain_are_timeouts(
    autojump_clock: trio.abc.Clock,
) -> None:
    samples, dropped = await _run(_load(10, 1, connections=64), 60.0, 1.0)
    assert dropped == []
    assert len(samples) == 10
    assert all(s.outcome == "timeout" and s.error for s in samples)
    # Abandoned when the 5 s drain ended, 1 s after the load started.
    latest = max(samples, key=lambda s: s.intended_s)
    assert latest.latency_s == pytest.approx(6.0 - latest.intended_s, abs=1e-9)


async def test_connection_refused_is_an_error(autojump_clock: trio.abc.Clock) -> None:
    network = MemoryNetwork()
    samples: list[Sample] = []
    client = LoadClient(_load(10, 1), [TARGET], network)
    generator = OpenLoopGenerator(_load(10, 1), client, random.Random(0), samples.append, print)
    await generator.run(1.0)
    assert {s.outcome for s in samples} == {"connect"}
    assert len(samples) == 10


async def test_closed_loop_users_send_as_fast_as_the_server_answers(
    autojump_clock: trio.abc.Clock,
) -> None:
    closed = LoadSpec(target="frontend", connections=4, mode="closed", think_time_s=0.05)
    samples, dropped = await _run(closed, 0.05, 1.0)
    # Each user: 50 ms of service plus 50 ms of thinking, for 1 s: 10 requests each.
    assert len(samples) == 40
    assert dropped == []
    assert all(s.latency_s == pytest.approx(0.05, abs=1e-9) for s in samples)
    assert all(s.lag_s == 0 and s.latency_s == s.uncorrected_s for s in samples)


async def test_each_connection_task_sleeps_on_its_own_sleeper_and_closes_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    made: list[_CountingSleeper] = []

    def factory() -> _CountingSleeper:
        made.append(_CountingSleeper())
        return made[-1]

    network = MemoryNetwork()
    samples: list[Sample] = []

    async def app(request: Request) -> Response:
        await trio.sleep(0.01)
        return Response(200)

    async def handler(stream: trio.abc.Stream) -> None:
        await serve_http(stream, app)

    load = _load(100, 1, connections=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.serve, TARGET, handler)
        client = LoadClient(load, [TARGET], network)
        generator = make_generator(
            load, client, random.Random(0), samples.append, print, sleepers=factory
        )
        await generator.run(1.0)
        nursery.cancel_scope.cancel()
    assert len(samples) == 100
    assert all(s.lag_s == pytest.approx(0, abs=1e-9) for s in samples)
    assert len(made) == 4
    assert all(sleeper.closed for sleeper in made)
    # Every request but the first (due at once) was slept for, by one of the four.
    assert sum(sleeper.sleeps for sleeper in made) == 99


class _CountingSleeper:
    def __init__(self) -> None:
        self.sleeps = 0
        self.closed = False

    async def sleep_until(self, deadline: float) -> None:
        self.sleeps += 1
        await trio.sleep_until(deadline)

    def close(self) -> None:
        self.closed = True
