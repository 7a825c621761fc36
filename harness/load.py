"""Open-loop load, measured from each request's intended start time (as wrk2 does).

:func:`arrival_offsets` is the schedule: when each request is meant to start, from the rate
the load spec gives at each moment (constant spacing, or exponential gaps for Poisson
arrivals). :class:`OpenLoopGenerator` keeps that schedule whatever the system under test does:
a request whose time has come starts at once on a free connection, so a slow server cannot
slow the generator down and hide its own slowness (coordinated omission). Latency counts from
the intended time; the uncorrected latency (from the actual send) and the generator's lag
(actual minus intended send time) are reported beside it. When every one of the
``connections`` is busy, a due request waits for one (its wait counts in its latency);
requests never sent by the end of the drain are counted as ``dropped`` (k6's
dropped_iterations), never lost out of sight.

The client parses responses with llhttp (meshcore.transport.llhttp), not h11 and not httpx:
h11 costs about 100 us per response, httpx far more (DESIGN.md 7).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from typing import NamedTuple

import trio

from harness.experiment import LOADGEN, LoadSpec, RequestSpec
from harness.pacing import SleeperFactory, TrioSleeper
from meshcore.errors import ConnectFailure, UpstreamError
from meshcore.layers.telemetry import SOURCE_HEADER
from meshcore.model import Endpoint, Request
from meshcore.transport.llhttp import LlhttpClientConnection, encode_request
from meshcore.transport.network import Network

__all__ = [
    "ClosedLoopGenerator",
    "LoadClient",
    "OpenLoopGenerator",
    "Outcome",
    "Sample",
    "arrival_offsets",
    "make_generator",
]


class Sample(NamedTuple):
    """One finished (or abandoned) request.

    A named tuple rather than a frozen dataclass: one is made per request, on the load
    generator's hot path, and a tuple is made several times faster.
    """

    intended_s: float  # intended start, seconds after the load started
    latency_s: float  # from the intended start: coordinated-omission corrected
    uncorrected_s: float  # from the moment it was actually sent
    lag_s: float  # actual send minus intended start
    outcome: str  # "2xx".."5xx", "connect", "reset" or "timeout"
    path: str = "/"  # the request's path: SLOs select it with where.route

    @property
    def error(self) -> bool:
        """Tell whether the request failed (a 5xx or no response at all)."""
        return self.outcome not in _SUCCESSES


_SUCCESSES = frozenset(("2xx", "3xx", "4xx"))
_STATUS_CLASS = {digit: f"{digit}xx" for digit in range(1, 6)}


Outcome = str
SampleSink = Callable[[Sample], None]


def arrival_offsets(load: LoadSpec, end_s: float, rng: random.Random) -> Iterator[float]:
    """Yield intended start times (seconds after the load starts) up to ``end_s``.

    The k-th request starts when the expected number of arrivals so far, the integral of the
    rate, reaches k (constant arrivals) or the sum of k exponential draws of mean 1 (Poisson
    arrivals). Integrating the rate, instead of stepping by ``1 / rate``, keeps ramps exact:
    a ramp from 0 to 100/s over 10 s sends 500 requests, a quarter of them in its first half.
    """
    target = 0.0
    stage_start, stage_rate, done = 0.0, load.start_rate_per_s, 0.0
    for stage in load.stages:
        stage_end = min(stage_start + stage.duration_s, end_s)
        # Arrivals in this stage: done + r0*x + (r1-r0)/(2d)*x^2, with x the time into it.
        slope = (stage.rate_per_s - stage_rate) / stage.duration_s if stage.duration_s else 0.0
        while True:
            x = _time_to_reach(target - done, stage_rate, slope)
            if x is None or stage_start + x >= stage_end:
                break
            yield stage_start + x
            target += rng.expovariate(1.0) if load.arrival == "poisson" else 1.0
        span = stage_end - stage_start
        done += stage_rate * span + slope * span * span / 2
        stage_start, stage_rate = stage_end, stage.rate_per_s
        if stage_start >= end_s:
            return


def _time_to_reach(count: float, rate: float, slope: float) -> float | None:
    """Return the x >= 0 at which ``rate*x + slope/2*x**2`` reaches ``count`` (None: never)."""
    if count <= 0:
        return 0.0
    if abs(slope) < 1e-12:
        return count / rate if rate > 0 else None
    discriminant = rate * rate + 2 * slope * count
    if discriminant < 0:
        return None  # a falling rate that reaches 0 before this many arrivals
    return (math.sqrt(discriminant) - rate) / slope


class LoadClient:
    """The generator's side of the wire: keep-alive connections to the targets.

    New connections go to the targets in turn (round robin, like a Kubernetes Service in
    front of the replicas); an idle connection is reused before a new one is opened. Each
    request kind of the mix is built once, not per request.
    """

    def __init__(self, load: LoadSpec, targets: list[Endpoint], network: Network) -> None:
        self._host = load.target
        self._targets = targets
        self._network = network
        self._idle: list[LlhttpClientConnection] = []
        self._next_target = 0
        self.requests = [_build_request(load.target, spec) for spec in load.requests]
        # Each request of the mix on the wire, encoded once (keyed by identity: the requests
        # live as long as the client).
        self._wire = {
            id(request): (encode_request(request, self._host), request.method == "HEAD")
            for request in self.requests
        }

    async def exchange(self, request: Request) -> Outcome:
        """Send one request; return its outcome class (``"2xx"``, ``"connect"``, ...)."""
        conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                target = self._targets[self._next_target % len(self._targets)]
                self._next_target += 1
                conn = LlhttpClientConnection(await self._network.connect(target))
            wire = self._wire.get(id(request))
            if wire is None:
                response = await conn.round_trip(request, host=self._host)
            else:
                response = await conn.round_trip_encoded(wire[0], head_only=wire[1])
        except ConnectFailure:
            return "connect"
        except UpstreamError:
            return "reset"
        except BaseException:
            if conn is not None:
                await trio.aclose_forcefully(conn.stream)
            raise
        if conn.reusable:
            self._idle.append(conn)
        else:
            await trio.aclose_forcefully(conn.stream)
        status = response.status
        return _STATUS_CLASS.get(status // 100) or f"{status // 100}xx"

    async def aclose(self) -> None:
        """Close every idle connection."""
        while self._idle:
            await trio.aclose_forcefully(self._idle.pop().stream)


def _build_request(host: str, spec: RequestSpec) -> Request:
    headers = [("host", host), (SOURCE_HEADER, LOADGEN)]
    headers.extend((name.lower(), value) for name, value in spec.headers.items())
    return Request(spec.method, spec.path, tuple(headers), b"x" * spec.size_bytes)


class OpenLoopGenerator:
    """Sends ``load``'s schedule through ``client``, whatever the server does.

    ``connections`` tasks each send one request at a time, as wrk2's connections do. A task
    that is free claims the next intended time of the shared schedule and sleeps until it; a
    task that finishes a request after its successor's time has passed (every task was busy)
    sends that request at once, late, and its wait counts in its latency (from its intended
    time) but not in its uncorrected latency (from its actual send), which is exactly the
    difference coordinated omission hides. This is a queue of due requests served first come,
    first served by free connections, without a dispatcher: a request never waits while a
    task is free (a free task holds a claim on an earlier time than any unclaimed one), and
    each request costs one wakeup, not two. Intended times never claimed when the drain ends
    were never sent: they are ``dropped``.

    ``sleepers`` makes each task's timer: trio's by default (exact in virtual time); the
    load command passes :func:`harness.pacing.precise_sleepers` on the real clock.
    """

    def __init__(
        self,
        load: LoadSpec,
        client: LoadClient,
        rng: random.Random,
        sink: SampleSink,
        on_dropped: Callable[[float], None],
        *,
        sleepers: SleeperFactory = TrioSleeper,
    ) -> None:
        self._load = load
        self._client = client
        self._rng = rng
        self._sink = sink
        self._on_dropped = on_dropped
        self._sleepers = sleepers
        self._weights = [spec.weight for spec in load.requests]

    async def run(self, duration_s: float, *, drain_s: float = 5.0) -> None:
        """Send the schedule for ``duration_s``, then give late requests ``drain_s`` to finish.

        Requests in flight when the drain ends are recorded as ``timeout`` with the latency
        they had reached; requests never sent are reported dropped. Nothing measured is lost.
        """
        start = trio.current_time()
        schedule = arrival_offsets(self._load, duration_s, self._rng)
        with trio.move_on_at(start + duration_s + drain_s):
            async with trio.open_nursery() as connections:
                for _ in range(self._load.connections):
                    connections.start_soon(self._connection, start, schedule)
        for offset in schedule:
            self._on_dropped(offset)
        await self._client.aclose()

    def _pick(self) -> Request:
        requests = self._client.requests
        if len(requests) == 1:
            return requests[0]
        return self._rng.choices(requests, self._weights)[0]

    async def _connection(self, start: float, schedule: Iterator[float]) -> None:
        sleeper = self._sleepers()
        exchange, sink, current_time = self._client.exchange, self._sink, trio.current_time
        try:
            for offset in schedule:  # claim the next intended time
                request = self._pick()
                intended = start + offset
                if intended > current_time():
                    await sleeper.sleep_until(intended)
                sent = current_time()
                outcome = "timeout"
                try:
                    outcome = await exchange(request)
                finally:
                    done = current_time()
                    sink(
                        Sample(
                            offset,
                            done - intended,
                            done - sent,
                            sent - intended,
                            outcome,
                            request.path,
                        )
                    )
        finally:
            sleeper.close()


class ClosedLoopGenerator:
    """``connections`` virtual users, each sending its next request when the last returns.

    This is how wrk (not wrk2), ab and k6's constant-vus executor load a server: the server's
    speed sets the rate, so a slow server is sent less and its latency reads too low. It is
    here to compare with such tools; its samples have no intended time but the actual send
    (latency equals uncorrected latency, lag is 0). ``thinkTime`` waits between requests.
    """

    def __init__(
        self, load: LoadSpec, client: LoadClient, rng: random.Random, sink: SampleSink
    ) -> None:
        self._load = load
        self._client = client
        self._rng = rng
        self._sink = sink
        self._weights = [spec.weight for spec in load.requests]

    async def run(self, duration_s: float, *, drain_s: float = 5.0) -> None:
        """Run every virtual user for ``duration_s``; requests then in flight get ``drain_s``.

        A request still unanswered after the drain is recorded as ``timeout``.
        """
        start = trio.current_time()
        with trio.move_on_after(duration_s + drain_s):
            async with trio.open_nursery() as nursery:
                for _ in range(self._load.connections):
                    nursery.start_soon(self._user, start, start + duration_s)
        await self._client.aclose()

    async def _user(self, start: float, end: float) -> None:
        while trio.current_time() < end:
            request = self._rng.choices(self._client.requests, self._weights)[0]
            sent = trio.current_time()
            outcome = "timeout"
            try:
                outcome = await self._client.exchange(request)
            finally:
                latency = trio.current_time() - sent
                self._sink(Sample(sent - start, latency, latency, 0.0, outcome, request.path))
            await trio.sleep(self._load.think_time_s)


def make_generator(
    load: LoadSpec,
    client: LoadClient,
    rng: random.Random,
    sink: SampleSink,
    on_dropped: Callable[[float], None],
    *,
    sleepers: SleeperFactory = TrioSleeper,
) -> OpenLoopGenerator | ClosedLoopGenerator:
    """Return the generator for ``load.mode`` (a closed loop never drops: it never runs ahead).

    ``sleepers``: see :class:`OpenLoopGenerator` (on the real clock, pass
    :func:`harness.pacing.precise_sleepers`).
    """
    if load.mode == "closed":
        return ClosedLoopGenerator(load, client, rng, sink)
    return OpenLoopGenerator(load, client, rng, sink, on_dropped, sleepers=sleepers)
