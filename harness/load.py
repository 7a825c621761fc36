"""Open-loop load, measured from each request's intended start time (as wrk2 does).

:func:`arrival_offsets` is the schedule: when each request is meant to start, from the rate
the load spec gives at each moment (constant spacing, or exponential gaps for Poisson
arrivals). :class:`OpenLoopGenerator` keeps that schedule whatever the system under test does:
a request whose time has come starts at once on a free connection, so a slow server cannot
slow the generator down and hide its own slowness (coordinated omission). Latency counts from
the intended time; the uncorrected latency (from the actual send) and the generator's lag
(actual minus intended send time) are reported beside it. When every one of the
``connections`` is busy, the request is counted as ``dropped`` (k6's dropped_iterations),
never queued out of sight.

The client is meshcore's h11 client on raw connections, not httpx (DESIGN.md 7).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import trio

from harness.experiment import LOADGEN, LoadSpec, RequestSpec
from meshcore.errors import ConnectFailure, UpstreamError
from meshcore.layers.telemetry import SOURCE_HEADER
from meshcore.model import Endpoint, Request
from meshcore.transport.http1 import ClientConnection
from meshcore.transport.network import Network

__all__ = ["OpenLoopGenerator", "Outcome", "Sample", "arrival_offsets"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One finished (or abandoned) request."""

    intended_s: float  # intended start, seconds after the load started
    latency_s: float  # from the intended start: coordinated-omission corrected
    uncorrected_s: float  # from the moment it was actually sent
    lag_s: float  # actual send minus intended start
    outcome: str  # "2xx".."5xx", "connect", "reset" or "timeout"

    @property
    def error(self) -> bool:
        """Tell whether the request failed (a 5xx or no response at all)."""
        return self.outcome not in ("2xx", "3xx", "4xx")


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


class OpenLoopGenerator:
    """Drives ``load`` at ``targets`` (round robin over them, like a Kubernetes Service)."""

    def __init__(
        self,
        load: LoadSpec,
        targets: list[Endpoint],
        network: Network,
        rng: random.Random,
        sink: SampleSink,
        on_dropped: Callable[[float], None],
    ) -> None:
        self._load = load
        self._targets = targets
        self._network = network
        self._rng = rng
        self._sink = sink
        self._on_dropped = on_dropped
        self._idle: list[ClientConnection] = []
        self._in_flight = 0
        self._next_target = 0
        self._weights = [spec.weight for spec in load.requests]
        self._schedule_done = False
        self._drained = trio.Event()

    async def run(self, duration_s: float, *, drain_s: float = 5.0) -> None:
        """Send the schedule for ``duration_s``, then give requests ``drain_s`` to finish.

        Requests still in flight after the drain are recorded as ``timeout`` with the latency
        they had reached, so nothing measured is lost.
        """
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for offset in arrival_offsets(self._load, duration_s, self._rng):
                await trio.sleep_until(start + offset)
                if self._in_flight >= self._load.connections:
                    self._on_dropped(offset)
                    continue
                self._in_flight += 1
                spec = self._rng.choices(self._load.requests, self._weights)[0]
                nursery.start_soon(self._one_request, start, offset, spec)
            await trio.sleep_until(start + duration_s)
            self._schedule_done = True
            if self._in_flight == 0:
                self._drained.set()
            with trio.move_on_after(drain_s):
                await self._drained.wait()
            nursery.cancel_scope.cancel()
        for conn in self._idle:
            await trio.aclose_forcefully(conn.stream)

    async def _one_request(self, start: float, offset: float, spec: RequestSpec) -> None:
        intended = start + offset
        sent = trio.current_time()
        outcome = "timeout"
        try:
            outcome = await self._exchange(spec)
        finally:
            done = trio.current_time()
            self._in_flight -= 1
            if self._schedule_done and self._in_flight == 0:
                self._drained.set()
            self._sink(Sample(offset, done - intended, done - sent, sent - intended, outcome))

    async def _exchange(self, spec: RequestSpec) -> Outcome:
        headers = [("host", self._load.target), (SOURCE_HEADER, LOADGEN)]
        headers.extend((name.lower(), value) for name, value in spec.headers.items())
        request = Request(spec.method, spec.path, tuple(headers), b"x" * spec.size_bytes)
        conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                target = self._targets[self._next_target % len(self._targets)]
                self._next_target += 1
                conn = ClientConnection(await self._network.connect(target))
            response = await conn.round_trip(request, host=self._load.target)
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
        return f"{response.status // 100}xx"
