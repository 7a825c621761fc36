"""HDR latency histograms per scope and per interval (DESIGN.md 6).

The one implementation shared by the load generator and harness (``harness.recorder``
re-exports it) and by every sidecar, which records its outbound edges with it
(:mod:`meshcore.edges`); it lives in meshcore because meshcore never imports harness.

Theory of operation
-------------------
Every completed request is recorded once, with the scopes it belongs to (``all``,
``phase=fault``, ``service=payments``, ...), its intended start ``at_s`` (seconds since the start
of measurement) and its latency. Latencies are stored as whole microseconds in HdrHistograms that
cover 0 .. 1 h at 3 significant digits, the shape HdrHistogram's documentation uses for
response times. A latency outside that range is clamped to the nearest edge *and* counted in
``out_of_range``, so that it still weighs in every percentile and is never lost silently (the
package's ``record_value`` just returns False for it).

:meth:`Recorder.record` is on the load generator's hot path, and the package's ``record_value``
is pure Python (several microseconds per call, twice per scope). So ``record`` only appends the
value and its interval index to a per-scope buffer. When the buffer is full, or before any
result is read, :meth:`_ScopeData.flush` adds the batch with numpy: it computes the counts-array
indices exactly as HdrHistogram's ``countsArrayIndex`` does and adds them into the total
histogram's counts array in place. A test checks that the result equals ``record_value``
histograms count for count.

:meth:`Recorder.record_many` takes a batch of requests of one scope as arrays, for a caller
that buffers its own samples (``meshchaos load`` records three scopes per request).

Interval histograms are kept sparse, as numpy arrays of (counts-array index, count) appended
one chunk per flush and consolidated when read, because a dense histogram of this range weighs
184 KiB; a ten-minute run with a handful of scopes would need gigabytes. They become
:class:`HdrHistogram` objects only when :meth:`Recorder.intervals` is asked for them.

Beside latencies, a scope keeps named counters per interval (:meth:`Recorder.count`; a
sidecar's ``attempts`` and ``ejections``). :meth:`Recorder.encode_scope` and
:meth:`Recorder.add_encoded` carry a scope between processes as JSON with HDR-encoded interval
histograms, so that merged recorders are exact.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

__all__ = [
    "HIGHEST_US",
    "LOWEST_US",
    "SIGNIFICANT_DIGITS",
    "Interval",
    "Recorder",
    "ScopeStats",
    "histogram_mean_us",
    "histogram_stddev_us",
    "new_histogram",
    "value_at_percentile_us",
]

LOWEST_US = 1
"""Lowest discernible latency, in microseconds (a latency of 0 is recorded as 0)."""
HIGHEST_US = 3_600_000_000
"""Highest trackable latency, in microseconds (one hour)."""
SIGNIFICANT_DIGITS = 3
"""Value precision of every histogram: quantization is at most 0.1 % of a value."""

_FLUSH_AT = 2048
"""Buffered values per scope before they are added to the histograms.

A flush costs about 0.2 ms, mostly numpy's per-call overhead, and it stalls the caller's
event loop for that long: small enough batches keep the stall below a load generator's lag
budget, large enough ones keep the cost per value below 0.1 us."""

_US_PER_S = 1_000_000
_US_PER_MS = 1000.0

_Counts = npt.NDArray[np.uint64]


def new_histogram() -> HdrHistogram:
    """Return an empty histogram with the recorder's range and precision."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


_TEMPLATE = new_histogram()
_COUNTS_LEN: int = _TEMPLATE.counts_len
_UNIT_MAGNITUDE: int = _TEMPLATE.unit_magnitude
_HALF_MAGNITUDE: int = _TEMPLATE.sub_bucket_half_count_magnitude
_HALF_COUNT: int = _TEMPLATE.sub_bucket_half_count
_SUB_BUCKET_MASK: int = _TEMPLATE.sub_bucket_mask


def _counts_indices(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Return the counts-array index of each value (HdrHistogram's ``countsArrayIndex``).

    ``bit_length(v | mask)`` is the exponent that ``frexp`` returns, exact for values below 2**53.
    """
    _, pow2ceiling = np.frexp((values | _SUB_BUCKET_MASK).astype(np.float64))
    bucket = pow2ceiling.astype(np.int64) - _UNIT_MAGNITUDE - (_HALF_MAGNITUDE + 1)
    sub_bucket = values >> (bucket + _UNIT_MAGNITUDE)
    return ((bucket + 1) << _HALF_MAGNITUDE) + sub_bucket - _HALF_COUNT


def _index_values() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return the lowest equivalent value and the range width of every counts-array index."""
    index = np.arange(_COUNTS_LEN, dtype=np.int64)
    bucket = (index >> _HALF_MAGNITUDE) - 1
    sub_bucket = (index & (_HALF_COUNT - 1)) + _HALF_COUNT
    first = bucket < 0
    sub_bucket[first] -= _HALF_COUNT
    bucket[first] = 0
    shift = bucket + _UNIT_MAGNITUDE
    return sub_bucket << shift, np.int64(1) << shift


_LOWEST_AT, _WIDTH_AT = _index_values()
_HIGHEST_AT = _LOWEST_AT + _WIDTH_AT - 1
_MEDIAN_AT = _LOWEST_AT + (_WIDTH_AT >> 1)


def _counts(histogram: HdrHistogram) -> _Counts:
    """Return a writable numpy view of a recorder-shaped histogram's counts array."""
    if histogram.counts_len != _COUNTS_LEN or histogram.unit_magnitude != _UNIT_MAGNITUDE:
        raise ValueError("the histogram does not have the recorder's range and precision")
    view: _Counts = np.ctypeslib.as_array(histogram.counts)
    return view


def _set_extremes(histogram: HdrHistogram, min_index: int, max_index: int) -> None:
    """Widen a histogram's recorded min and max to cover two counts-array indices.

    The package keeps raw values there; any value of the same bucket gives the same
    ``get_min_value``/``get_max_value``/``encode`` results, so the bucket's lowest value will do.
    """
    histogram.min_value = min(histogram.min_value, int(_LOWEST_AT[min_index]))
    histogram.max_value = max(histogram.max_value, int(_LOWEST_AT[max_index]))


def value_at_percentile_us(histogram: HdrHistogram, percentile: float) -> int:
    """Return the latency at ``percentile`` (0..100) in microseconds, 0 for an empty histogram.

    Current HdrHistogram (Java) semantics: the smallest value that at least ``percentile`` % of
    the recorded values do not exceed (rank ``ceil(p * n / 100)``), reported as the highest value
    equivalent to it. The package rounds the rank to nearest instead, which can under-report.
    """
    total: int = histogram.total_count
    if total == 0:
        return 0
    # nextafter: 99.9 / 100 * 1000 is 999.0000000000001 in floating point, not 999.
    requested = min(max(math.nextafter(percentile, -math.inf), 0.0), 100.0)
    rank = max(math.ceil(requested / 100.0 * total), 1)
    index = int(np.searchsorted(np.cumsum(_counts(histogram)), rank))
    if percentile == 0.0:
        return int(_LOWEST_AT[index])
    return int(_HIGHEST_AT[index])


def histogram_mean_us(histogram: HdrHistogram) -> float:
    """Return the mean in microseconds as HdrHistogram computes it (bucket medians), 0 if empty."""
    total: int = histogram.total_count
    if total == 0:
        return 0.0
    return float(np.dot(_counts(histogram).astype(np.float64), _MEDIAN_AT)) / total


def histogram_stddev_us(histogram: HdrHistogram) -> float:
    """Return the standard deviation in microseconds as HdrHistogram computes it, 0 if empty."""
    total: int = histogram.total_count
    if total == 0:
        return 0.0
    deviation = _MEDIAN_AT - histogram_mean_us(histogram)
    return math.sqrt(float(np.dot(_counts(histogram).astype(np.float64), deviation**2)) / total)


def _copy(histogram: HdrHistogram) -> HdrHistogram:
    """Return an independent copy of a recorder-shaped histogram."""
    copy = new_histogram()
    _counts(copy)[:] = _counts(histogram)
    copy.total_count = histogram.total_count
    copy.min_value = histogram.min_value
    copy.max_value = histogram.max_value
    return copy


@dataclass(frozen=True, slots=True)
class ScopeStats:
    """A snapshot of one scope's totals (it satisfies ``harness.slo.Measured``).

    ``counters`` holds the totals of the scope's named counters (:meth:`Recorder.count`).
    """

    name: str
    requests: int
    errors: int
    duration_s: float
    histogram: HdrHistogram
    out_of_range: int
    counters: Mapping[str, int] = field(default_factory=dict)

    def percentile_ms(self, percentile: float) -> float:
        """Latency at ``percentile`` (0..100, e.g. 99.9) in milliseconds."""
        return value_at_percentile_us(self.histogram, percentile) / _US_PER_MS

    @property
    def mean_ms(self) -> float:
        """Mean latency in milliseconds."""
        return histogram_mean_us(self.histogram) / _US_PER_MS

    @property
    def max_ms(self) -> float:
        """Largest latency in milliseconds (the top of its histogram bucket)."""
        return int(self.histogram.get_max_value()) / _US_PER_MS

    @property
    def error_rate(self) -> float:
        """Errors per request, a fraction in [0, 1]; 0 when there were no requests."""
        return self.errors / self.requests if self.requests else 0.0

    @property
    def throughput_rps(self) -> float:
        """Requests per second over ``duration_s``; 0 when the duration is 0."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def summary(self) -> dict[str, object]:
        """Return the scope's entry of ``summary.json`` (DESIGN.md 4.3), latencies in ms."""
        latency = {
            label: round(self.percentile_ms(percentile), 3)
            for label, percentile in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))
        }
        latency["max"] = round(self.max_ms, 3)
        latency["mean"] = round(self.mean_ms, 3)
        entry: dict[str, object] = {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "throughput_rps": self.throughput_rps,
            "latency_ms": latency,
        }
        if self.out_of_range:
            entry["out_of_range"] = self.out_of_range
        if self.counters:
            entry["counters"] = dict(sorted(self.counters.items()))
        return entry


@dataclass(frozen=True, slots=True)
class Interval:
    """One scope's requests whose intended start fell in ``[start_s, end_s)``."""

    index: int
    start_s: float
    end_s: float
    histogram: HdrHistogram
    requests: int
    errors: int
    counters: Mapping[str, int] = field(default_factory=dict)

    def percentile_ms(self, percentile: float) -> float:
        """Latency at ``percentile`` (0..100) in milliseconds, 0 when the interval is empty."""
        return value_at_percentile_us(self.histogram, percentile) / _US_PER_MS

    @property
    def max_ms(self) -> float:
        """Largest latency in milliseconds, 0 when the interval is empty."""
        return int(self.histogram.get_max_value()) / _US_PER_MS


_NO_INDICES: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
_NO_COUNTS: _Counts = np.zeros(0, dtype=np.uint64)
_MAX_CHUNKS = 16
"""Chunks an interval keeps before they are consolidated into one."""


@dataclass(slots=True)
class _SparseCounts:
    """An interval histogram as chunks of (counts-array indices, counts); owned by one scope.

    Each flush appends one chunk, so recording has no Python loop over values; the chunks are
    consolidated (indices unique and ascending, counts summed) when read, or when
    :data:`_MAX_CHUNKS` have piled up.
    """

    chunks: list[tuple[npt.NDArray[np.int64], _Counts]] = field(default_factory=list)
    total: int = 0
    min_index: int = _COUNTS_LEN
    max_index: int = 0

    def add(self, indices: npt.NDArray[np.int64], counts: _Counts) -> None:
        """Add ``counts[i]`` values at each counts-array index ``indices[i]`` (sorted, unique)."""
        if not len(indices):
            return
        self.chunks.append((indices, counts))
        self.total += int(counts.sum())
        self.min_index = min(self.min_index, int(indices[0]))
        self.max_index = max(self.max_index, int(indices[-1]))
        if len(self.chunks) > _MAX_CHUNKS:
            self.consolidated()

    def consolidated(self) -> tuple[npt.NDArray[np.int64], _Counts]:
        """Return the counts as one (indices, counts) pair, indices unique and ascending."""
        chunks = self.chunks
        if not chunks:
            return _NO_INDICES, _NO_COUNTS
        if len(chunks) > 1:
            indices = np.concatenate([chunk[0] for chunk in chunks])
            counts = np.concatenate([chunk[1] for chunk in chunks])
            order = np.argsort(indices, kind="stable")
            indices, counts = indices[order], counts[order]
            starts = np.flatnonzero(np.diff(indices, prepend=-1))
            chunks[:] = [(indices[starts], np.add.reduceat(counts, starts))]
        return chunks[0]

    def merge(self, other: _SparseCounts) -> None:
        """Add another interval's counts to this one."""
        self.add(*other.consolidated())

    def histogram(self) -> HdrHistogram:
        """Return the counts as a new histogram."""
        histogram = new_histogram()
        if self.total:
            indices, counts = self.consolidated()
            _counts(histogram)[indices] = counts
            histogram.total_count = self.total
            _set_extremes(histogram, self.min_index, self.max_index)
        return histogram


class _ScopeData:
    """Everything recorded for one scope (mutable state of a :class:`Recorder`)."""

    __slots__ = (
        "counters",
        "errors",
        "histogram",
        "interval_errors",
        "intervals",
        "out_of_range",
        "pending_index",
        "pending_us",
    )

    def __init__(self) -> None:
        self.histogram = new_histogram()
        self.intervals: dict[int, _SparseCounts] = {}
        self.errors = 0
        self.interval_errors: dict[int, int] = {}
        self.out_of_range = 0
        self.counters: dict[str, dict[int, int]] = {}  # name -> interval -> count
        self.pending_us = array("q")
        self.pending_index = array("q")

    def count(self, name: str, index: int, amount: int) -> None:
        """Add ``amount`` to counter ``name`` in interval ``index``."""
        per_interval = self.counters.get(name)
        if per_interval is None:
            per_interval = self.counters[name] = {}
        per_interval[index] = per_interval.get(index, 0) + amount

    def interval_counters(self, index: int) -> dict[str, int]:
        """Return the counters of interval ``index`` that are not zero."""
        return {
            name: per_interval[index]
            for name, per_interval in sorted(self.counters.items())
            if per_interval.get(index)
        }

    def flush(self) -> None:
        """Add the buffered values to the total and interval histograms."""
        if not self.pending_us:
            return
        values = np.frombuffer(self.pending_us, dtype=np.int64)
        interval_of = np.frombuffer(self.pending_index, dtype=np.int64)
        indices = _counts_indices(values)
        # One key per (interval, counts index); np.unique sorts them, so each interval's keys
        # are contiguous and its counts indices ascending. Counts indices fit in 32 bits.
        keys, key_counts = np.unique((interval_of << 32) | indices, return_counts=True)
        counts = key_counts.astype(np.uint64)
        key_index = keys & 0xFFFFFFFF
        key_interval = keys >> 32
        total = _counts(self.histogram)
        if key_interval[0] == key_interval[-1]:
            total[key_index] += counts  # one interval: the indices are unique
        else:
            np.add.at(total, key_index, counts)  # unlike `+=`, adds every repeated index
        self.histogram.total_count += len(values)
        _set_extremes(self.histogram, int(key_index.min()), int(key_index.max()))
        starts = np.flatnonzero(np.diff(key_interval, prepend=-1))
        for start, end in zip(starts.tolist(), [*starts[1:].tolist(), len(keys)], strict=True):
            number = int(key_interval[start])
            sparse = self.intervals.get(number)
            if sparse is None:
                sparse = self.intervals[number] = _SparseCounts()
            sparse.add(key_index[start:end], counts[start:end])
        self.pending_us = array("q")
        self.pending_index = array("q")

    def merge(self, other: _ScopeData) -> None:
        """Add another scope's (flushed) data to this one's (flushed) data."""
        _counts(self.histogram)[:] += _counts(other.histogram)
        self.histogram.total_count += other.histogram.total_count
        self.histogram.min_value = min(self.histogram.min_value, other.histogram.min_value)
        self.histogram.max_value = max(self.histogram.max_value, other.histogram.max_value)
        for number in sorted(other.intervals):
            mine = self.intervals.get(number)
            if mine is None:
                mine = self.intervals[number] = _SparseCounts()
            mine.merge(other.intervals[number])
        self.errors += other.errors
        for number, errors in sorted(other.interval_errors.items()):
            self.interval_errors[number] = self.interval_errors.get(number, 0) + errors
        self.out_of_range += other.out_of_range
        for name, per_interval in sorted(other.counters.items()):
            for number, amount in sorted(per_interval.items()):
                self.count(name, number, amount)


class Recorder:
    """Latency histograms per scope, in total and per interval of ``interval_s`` seconds."""

    def __init__(self, *, interval_s: float = 1.0) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self.interval_s = interval_s
        self._scopes: dict[str, _ScopeData] = {}

    def record(self, scopes: Sequence[str], at_s: float, latency_s: float, *, error: bool) -> None:
        """Record one request in each of ``scopes``.

        ``at_s`` is the request's intended start in seconds since the start of measurement (it
        picks the interval); ``latency_s`` is measured from that intended start. A failed request
        is recorded with its latency like any other and also counted in ``errors``.
        """
        if at_s < 0:
            raise ValueError(f"at_s must not be negative, got {at_s!r}")
        value = round(latency_s * _US_PER_S)
        out_of_range = value > HIGHEST_US or value < 0
        if out_of_range:
            # Clamped to the edge, so that it still counts in every percentile and in the max.
            value = HIGHEST_US if value > HIGHEST_US else 0
        index = int(at_s // self.interval_s)
        for name in scopes:
            data = self._scopes.get(name)
            if data is None:
                data = self._scopes[name] = _ScopeData()
            data.pending_us.append(value)
            data.pending_index.append(index)
            if error:
                data.errors += 1
                data.interval_errors[index] = data.interval_errors.get(index, 0) + 1
            if out_of_range:
                data.out_of_range += 1
            if len(data.pending_us) >= _FLUSH_AT:
                data.flush()

    def record_many(
        self,
        scope: str,
        at_s: npt.ArrayLike,
        latency_s: npt.ArrayLike,
        errors: npt.ArrayLike | None = None,
    ) -> None:
        """Record many requests in one scope: :meth:`record` for each, in a few numpy calls.

        ``at_s`` and ``latency_s`` are as in :meth:`record`, one value per request; ``errors``
        (booleans, optional) marks the failed ones. The result is exactly what recording them
        one by one gives (a test checks it).
        """
        at = np.asarray(at_s, dtype=np.float64)
        latency = np.asarray(latency_s, dtype=np.float64)
        if at.shape != latency.shape or at.ndim != 1:
            raise ValueError("at_s and latency_s must be flat sequences of the same length")
        if not len(at):
            return
        if (at < 0).any():
            raise ValueError("at_s must not be negative")
        # np.rint, like round(), rounds halves to even.
        rounded = np.rint(latency * _US_PER_S)
        out_of_range = int(np.count_nonzero((rounded > HIGHEST_US) | (rounded < 0)))
        values = np.clip(rounded, 0, HIGHEST_US).astype(np.int64)
        index = np.floor_divide(at, self.interval_s).astype(np.int64)
        data = self._scopes.get(scope)
        if data is None:
            data = self._scopes[scope] = _ScopeData()
        data.pending_us.frombytes(values.tobytes())
        data.pending_index.frombytes(index.tobytes())
        data.out_of_range += out_of_range
        if errors is not None:
            failed = index[np.asarray(errors, dtype=bool)]
            if len(failed):
                data.errors += len(failed)
                numbers, counts = np.unique(failed, return_counts=True)
                for number, count in zip(numbers.tolist(), counts.tolist(), strict=True):
                    data.interval_errors[number] = data.interval_errors.get(number, 0) + count
        if len(data.pending_us) >= _FLUSH_AT:
            data.flush()

    def count(self, scopes: Sequence[str], at_s: float, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name`` of each of ``scopes`` in the interval of ``at_s``."""
        if at_s < 0:
            raise ValueError(f"at_s must not be negative, got {at_s!r}")
        index = int(at_s // self.interval_s)
        for scope in scopes:
            data = self._scopes.get(scope)
            if data is None:
                data = self._scopes[scope] = _ScopeData()
            data.count(name, index, amount)

    def scope_names(self) -> list[str]:
        """Return the names of every scope recorded so far, sorted."""
        return sorted(self._scopes)

    def _data(self, name: str) -> _ScopeData:
        """Return a scope's flushed data; KeyError names an unknown scope."""
        data = self._scopes.get(name)
        if data is None:
            raise KeyError(f"no requests were recorded in scope {name!r}")
        data.flush()
        return data

    def scope(self, name: str, duration_s: float) -> ScopeStats:
        """Return a snapshot of a scope's totals over a measured time of ``duration_s``."""
        data = self._data(name)
        return ScopeStats(
            name=name,
            requests=int(data.histogram.total_count),
            errors=data.errors,
            duration_s=duration_s,
            histogram=_copy(data.histogram),
            out_of_range=data.out_of_range,
            counters={name: sum(c.values()) for name, c in sorted(data.counters.items())},
        )

    def iter_intervals(self, name: str) -> Iterator[Interval]:
        """Yield a scope's intervals by index, one histogram at a time (see :meth:`intervals`)."""
        data = self._data(name)
        numbers = {*data.intervals, *(n for c in data.counters.values() for n in c)}
        if not numbers:
            return
        empty = _SparseCounts()
        for number in range(min(numbers), max(numbers) + 1):
            sparse = data.intervals.get(number, empty)
            yield Interval(
                index=number,
                start_s=number * self.interval_s,
                end_s=(number + 1) * self.interval_s,
                histogram=sparse.histogram(),
                requests=sparse.total,
                errors=data.interval_errors.get(number, 0),
                counters=data.interval_counters(number),
            )

    def intervals(self, name: str) -> list[Interval]:
        """Return a scope's intervals sorted by index.

        Every interval from the first to the last with requests is included; one without requests
        has an empty histogram, so that plots show the gap rather than bridge it.
        """
        return list(self.iter_intervals(name))

    def add_interval(
        self,
        name: str,
        index: int,
        histogram: HdrHistogram,
        *,
        errors: int,
        out_of_range: int = 0,
        counters: Mapping[str, int] | None = None,
    ) -> None:
        """Add one interval's histogram (decoded from another process) to scope ``name``.

        This is how load workers merge exactly: each sends its interval histograms HDR-encoded,
        and their counts add up here as if one recorder had seen every value.
        """
        data = self._scopes.get(name)
        if data is None:
            data = self._scopes[name] = _ScopeData()
        data.flush()
        counts = _counts(histogram)
        indices = np.flatnonzero(counts)
        if len(indices):
            _counts(data.histogram)[indices] += counts[indices]
            data.histogram.total_count += int(counts[indices].sum())
            _set_extremes(data.histogram, int(indices[0]), int(indices[-1]))
            sparse = data.intervals.get(index)
            if sparse is None:
                sparse = data.intervals[index] = _SparseCounts()
            sparse.add(indices.astype(np.int64), counts[indices].astype(np.uint64))
        if errors:
            data.errors += errors
            data.interval_errors[index] = data.interval_errors.get(index, 0) + errors
        data.out_of_range += out_of_range
        for counter, amount in sorted((counters or {}).items()):
            data.count(counter, index, amount)

    def encode_scope(self, name: str) -> list[dict[str, Any]]:
        """Return scope ``name`` as JSON-ready intervals, each histogram HDR-encoded.

        Intervals with neither requests nor counters are left out; the scope's ``out_of_range``
        rides on the first one. :meth:`add_encoded` adds the result to a recorder.
        """
        out_of_range = self._data(name).out_of_range
        encoded: list[dict[str, Any]] = []
        for interval in self.iter_intervals(name):
            if not interval.requests and not interval.counters:
                continue
            item: dict[str, Any] = {"index": interval.index, "errors": interval.errors}
            if not encoded:
                item["out_of_range"] = out_of_range
            if interval.requests:
                item["histogram"] = interval.histogram.encode().decode("ascii")
            if interval.counters:
                item["counters"] = dict(interval.counters)
            encoded.append(item)
        return encoded

    def add_encoded(self, name: str, intervals: Sequence[Mapping[str, Any]]) -> None:
        """Add intervals that :meth:`encode_scope` produced (in any process) to scope ``name``."""
        for item in intervals:
            payload = item.get("histogram")
            self.add_interval(
                name,
                int(item["index"]),
                HdrHistogram.decode(payload) if payload else new_histogram(),
                errors=int(item.get("errors", 0)),
                out_of_range=int(item.get("out_of_range", 0)),
                counters=item.get("counters"),
            )

    def merge(self, other: Recorder) -> None:
        """Add everything ``other`` recorded to this recorder (exact: counts add up)."""
        if other is self:
            raise ValueError("a recorder cannot be merged into itself")
        if other.interval_s != self.interval_s:
            raise ValueError(
                f"cannot merge recorders with intervals of {self.interval_s} s "
                f"and {other.interval_s} s"
            )
        for name in other.scope_names():
            theirs = other._data(name)
            mine = self._scopes.get(name)
            if mine is None:
                mine = self._scopes[name] = _ScopeData()
            mine.flush()
            mine.merge(theirs)
