"""Toxiproxy's toxics as sans-IO schedules: bytes and a time in, timed steps out.

Theory of operation. A connection has two directions (Toxiproxy's ``stream``: ``upstream``
carries the caller's bytes to the server, ``downstream`` the answer back). Each direction
runs its chunks through the toxics that apply to it, in the order they were added, as
Toxiproxy chains its toxic stubs. A toxic here never sleeps: given a chunk that reaches it at
``at`` it returns :class:`Step` s, each saying *when* something leaves it: bytes, the end of
the stream, a close of the whole connection, or a reset. The next toxic takes those steps as
its input; the transport (:mod:`meshcore.transport.toxic`) waits until each step's instant
and acts. A toxic processes its chunks one at a time, like Toxiproxy's goroutine per stub,
so nothing leaves a toxic before what entered it earlier (``free_at`` in the states).

``timeout`` is the one toxic that stops the flow instead of shaping it: while it applies,
nothing passes (data waits; Toxiproxy's stub stops reading) and the connection is closed
``timeout`` after the toxic met the connection (never, with ``timeout: 0``).

Each toxic is one small class with typed fields, registered by name in :data:`TOXICS`
(Toxiproxy's ``Register("latency", ...)``). Durations are seconds, sizes bytes, rates bytes
per second; the readers of :mod:`meshcore.toxic_config` convert Toxiproxy's milliseconds,
microseconds and KB/s.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

__all__ = [
    "STREAMS",
    "TOXICS",
    "BandwidthToxic",
    "LatencyToxic",
    "LimitDataToxic",
    "ResetPeerToxic",
    "SlicerToxic",
    "SlowCloseToxic",
    "Step",
    "TimeoutToxic",
    "Toxic",
    "ToxicSpec",
    "ToxicState",
    "run_chain",
]

STREAMS = ("upstream", "downstream")

DATA, EOF, CLOSE, RESET = "data", "eof", "close", "reset"


@dataclass(frozen=True, slots=True)
class Step:
    """What leaves a toxic at ``at``: ``data`` (``kind`` data), or an end of the stream.

    ``kind`` is ``data``; ``eof`` (this direction ends, gracefully); ``close`` (the whole
    connection is closed, as Toxiproxy's proxy does when a stub closes); or ``reset`` (the
    connection is reset: TCP RST, unsent data discarded).
    """

    at: float
    data: bytes = b""
    kind: str = DATA


@dataclass(slots=True)
class ToxicState:
    """Per-connection, per-direction state of one toxic."""

    free_at: float = float("-inf")  # when the toxic is done with what it took so far
    sent: int = 0  # bytes passed (limit_data)
    triggered: bool = False  # reset_peer has scheduled its reset


class Toxic(Protocol):
    """One toxic type: its attributes, and how a chunk or the end of stream passes it."""

    type_name: ClassVar[str]
    #: The toxic stops the flow (timeout) instead of shaping it.
    holds: ClassVar[bool]

    def on_data(self, state: ToxicState, at: float, data: bytes, rng: random.Random) -> list[Step]:
        """Return what leaves the toxic for a chunk that reaches it at ``at``."""
        ...

    def on_eof(self, state: ToxicState, at: float) -> list[Step]:
        """Return what leaves the toxic for the end of stream reaching it at ``at``."""
        ...


class _Passing:
    """Shared behaviour: the end of stream leaves after what entered before it."""

    holds: ClassVar[bool] = False

    def on_eof(self, state: ToxicState, at: float) -> list[Step]:
        """Pass the end of stream on once earlier chunks have left."""
        return [Step(max(at, state.free_at), kind=EOF)]


@dataclass(frozen=True, slots=True)
class LatencyToxic(_Passing):
    """``latency``: each chunk leaves ``latency_s`` (plus or minus ``jitter_s``) after it arrived.

    As Toxiproxy's, the delay counts from the chunk's arrival, so chunks in flight overlap,
    and a chunk never overtakes an earlier one. The end of stream is not delayed.
    """

    type_name: ClassVar[str] = "latency"
    latency_s: float
    jitter_s: float = 0.0

    def on_data(self, state: ToxicState, at: float, data: bytes, rng: random.Random) -> list[Step]:
        """Delay the chunk."""
        delay = self.latency_s
        if self.jitter_s > 0:
            delay += rng.uniform(-self.jitter_s, self.jitter_s)
        state.free_at = max(at + delay, state.free_at)
        return [Step(state.free_at, data)]


@dataclass(frozen=True, slots=True)
class BandwidthToxic(_Passing):
    """``bandwidth``: at most ``rate_bytes_per_s``; a large chunk leaves in 100 ms slices."""

    type_name: ClassVar[str] = "bandwidth"
    rate_bytes_per_s: float

    def on_data(self, state: ToxicState, at: float, data: bytes, rng: random.Random) -> list[Step]:
        """Spread the chunk over ``len / rate`` seconds."""
        start = max(at, state.free_at)
        if self.rate_bytes_per_s <= 0:
            state.free_at = start
            return [Step(start, data)]
        # Toxiproxy sends rate x 100 ms worth of bytes every 100 ms, then the rest when the
        # whole chunk's time has passed.
        slice_size = max(1, int(self.rate_bytes_per_s * 0.1))
        steps: list[Step] = []
        offset = 0
        while len(data) - offset > slice_size:
            steps.append(Step(start + 0.1 * (len(steps) + 1), data[offset : offset + slice_size]))
            offset += slice_size
        state.free_at = start + len(data) / self.rate_bytes_per_s
        steps.append(Step(state.free_at, data[offset:]))
        return steps


@dataclass(frozen=True, slots=True)
class SlowCloseToxic:
    """``slow_close``: data passes; the end of stream leaves ``delay_s`` after it arrived."""

    type_name: ClassVar[str] = "slow_close"
    holds: ClassVar[bool] = False
    delay_s: float

    def on_data(self, state: ToxicState, at: float, data: bytes, rng: random.Random) -> list[Step]:
        """Pass the chunk on at once."""
        return [Step(at, data)]

    def on_eof(self, state: ToxicState, at: float) -> list[Step]:
        """Hold the end of stream for ``delay_s``."""
        return [Step(at + self.delay_s, kind=EOF)]


@dataclass(frozen=True, slots=True)
class TimeoutToxic(_Passing):
    """``timeout``: nothing passes; the connection closes ``timeout_s`` after (0: never).

    The transport holds data while it applies (:attr:`holds`); once it is removed, held data
    flows again, as in Toxiproxy.
    """

    type_name: ClassVar[str] = "timeout"
    holds: ClassVar[bool] = True
    timeout_s: float

    def close_at(self, met_at: float) -> float | None:
        """Return when the connection is closed, for a toxic that met it at ``met_at``."""
        return met_at + self.timeout_s if self.timeout_s > 0 else None

    def on_data(self, state: ToxicState, at: float, data: bytes, rng: random.Random) -> list[Step]:
        """Never called while the toxic holds the flow; passes data when asked."""
        return [Step(at, data)]


@dataclass(frozen=True, slots=True)
class ResetPeerToxic:
    """``reset_peer``: the first chunk (or end of stream) is dropped; ``timeout_s`` later, RST."""

    type_name: ClassVar[str] = "reset_peer"
    holds: ClassVar[bool] = False
    timeout_s: float = 0.0

    def _reset(self, state: ToxicState, at: float) -> list[Step]:
        if state.triggered:
            return []
        state.triggered = True
        return [Step(at + self.timeout_s, kind=RESET)]

    def on_data(self, state: ToxicState, at: float, data: bytes, rng: random.Random) -> list[Step]:
        """Drop the data; schedule the reset on the first chunk."""
        return self._reset(state, at)

    def on_eof(self, state: ToxicState, at: float) -> list[Step]:
        """Schedule the reset on the end of stream, as on data."""
        return self._reset(state, at)


@dataclass(frozen=True, slots=True)
class SlicerToxic(_Passing):
    """``slicer``: chunks cut in pieces of about ``average_size`` bytes, ``delay_s`` apart."""

    type_name: ClassVar[str] = "slicer"
    average_size: int
    size_variation: int = 0
    delay_s: float = 0.0

    def cuts(self, start: int, end: int, rng: random.Random) -> list[int]:
        """Return the offsets where ``[start, end)`` is cut (both ends included).

        Toxiproxy's recursive halving with a random shift of up to ``size_variation``.
        """
        if (end - start) - self.average_size <= self.size_variation:
            return [start, end]
        variation = self.size_variation
        shift = rng.randrange(-variation, variation) if variation else 0
        middle = start + (end - start) // 2 + shift
        return [*self.cuts(start, middle, rng), *self.cuts(middle, end, rng)[1:]]

    def on_data(self, state: ToxicState, at: float, data: bytes, rng: random.Random) -> list[Step]:
        """Cut the chunk; each piece leaves ``delay_s`` after the one before it."""
        start = max(at, state.free_at)
        offsets = self.cuts(0, len(data), rng) if self.average_size > 0 else [0, len(data)]
        steps = [
            Step(start + index * self.delay_s, data[offsets[index] : offsets[index + 1]])
            for index in range(len(offsets) - 1)
        ]
        state.free_at = start + len(steps) * self.delay_s  # Toxiproxy waits after each piece
        return steps


@dataclass(frozen=True, slots=True)
class LimitDataToxic(_Passing):
    """``limit_data``: the connection is closed once ``limit_bytes`` passed this direction."""

    type_name: ClassVar[str] = "limit_data"
    limit_bytes: int

    def on_data(self, state: ToxicState, at: float, data: bytes, rng: random.Random) -> list[Step]:
        """Pass what fits under the limit; close the connection when it is reached."""
        if state.sent >= self.limit_bytes:
            return []
        allowed = data[: self.limit_bytes - state.sent]
        state.sent += len(allowed)
        steps = [Step(at, allowed)] if allowed else []
        if state.sent >= self.limit_bytes:
            steps.append(Step(at, kind=CLOSE))
        return steps


TOXICS: dict[str, type[Toxic]] = {
    toxic.type_name: toxic
    for toxic in (
        LatencyToxic,
        BandwidthToxic,
        SlowCloseToxic,
        TimeoutToxic,
        ResetPeerToxic,
        SlicerToxic,
        LimitDataToxic,
    )
}


@dataclass(frozen=True, slots=True)
class ToxicSpec:
    """A toxic as a fault carries it: the toxic, the direction it acts on, and its toxicity.

    ``toxicity`` is the share of connections it acts on, drawn once per connection (Toxiproxy
    draws when the toxic starts on a connection's stub).
    """

    toxic: Toxic
    stream: str = "downstream"
    toxicity: float = 1.0

    @property
    def type(self) -> str:
        """Return the toxic's type name (``latency``, ``bandwidth``, ...)."""
        return self.toxic.type_name


def run_chain(
    chain: Sequence[tuple[Toxic, ToxicState]], step: Step, rng: random.Random
) -> list[Step]:
    """Pass ``step`` through every toxic of ``chain`` in order; return what leaves the last.

    A ``close`` or ``reset`` step passes later toxics untouched.
    """
    steps = [step]
    for toxic, state in chain:
        out: list[Step] = []
        for current in steps:
            if current.kind == DATA:
                out.extend(toxic.on_data(state, current.at, current.data, rng))
            elif current.kind == EOF:
                out.extend(toxic.on_eof(state, current.at))
            else:
                out.append(current)
        steps = out
    return steps
