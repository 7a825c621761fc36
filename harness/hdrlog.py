r"""HdrHistogram's file formats: the interval log (``.hlog``) and the percentile table (``.hgrm``).

The ``hdrhistogram`` package (0.10.8) has writers for both, but they are defective (DESIGN.md
6 and 7): ``output_start_time`` crashes, ``output_base_time`` writes a base without applying it,
interval lines carry no tag and a floored max, and the ``.hgrm`` footer prints the standard
deviation unscaled and a float total count. Its percentile ladder also differs from Java's (it
does not floor the exponent of the half-distance). These writers follow HdrHistogram (Java)'s
``HistogramLogWriter`` and ``outputPercentileDistribution`` instead.

What the package's ``HistogramLogReader`` understands, and so what :func:`write_hlog` keeps to:

- ``#[StartTime: <seconds> ...`` and ``#[BaseTime: <seconds> ...``, matched by
  ``#\[StartTime: *([\d\.]*) `` (digits and dots, then a space: no sign, no exponent);
- interval lines matched by ``([\d\.]*),([\d\.]*),([\d\.]*),(.*)`` after an optional
  ``Tag=<tag>,`` prefix, where the tag is everything up to the first comma; a line that does not
  match (the legend, other comments) is skipped;
- an absolute interval start is ``timestamp + BaseTime``; without a ``BaseTime`` line it guesses
  the base from the first timestamp (StartTime if that timestamp is over a year before it, else
  0), a guess that fails for a start time under a year after the epoch. We always write
  ``BaseTime``, as Java's reader also understands it.

Tags: a scope name such as ``service=a,edge=a->b`` may not go into a tag as it is, because the
tag ends at the first comma (and Java's writer refuses commas, spaces and line breaks). The
encoding is reversible: ``%``, ``;`` and every whitespace or control character become ``%XX``
(UTF-8 bytes, as in URLs), then ``,`` becomes ``;``. So ``service=a,edge=a->b`` is written
``Tag=service=a;edge=a->b`` and read back exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from hdrh.histogram import HdrHistogram

from harness.recorder import (
    SIGNIFICANT_DIGITS,
    Interval,
    Recorder,
    histogram_mean_us,
    histogram_stddev_us,
)

__all__ = [
    "HLOG_FORMAT_VERSION",
    "decode_tag",
    "encode_tag",
    "read_hlog",
    "write_hgrm",
    "write_hlog",
]

HLOG_FORMAT_VERSION = "1.3"
"""The interval log format version we write (HdrHistogram Java's current one)."""

_LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'
_US_PER_MS = 1000.0
_TICKS_PER_HALF_DISTANCE = 5


def encode_tag(scope: str) -> str:
    """Return the hlog tag of a scope name (see the module docstring for the encoding)."""
    if not scope:
        raise ValueError("a scope name must not be empty")
    return "".join(_encode_char(char) for char in scope)


def _encode_char(char: str) -> str:
    """Return one character of a scope name as it appears in a tag."""
    if char == ",":
        return ";"
    if char in "%;" or char.isspace() or not char.isprintable():
        return "".join(f"%{byte:02X}" for byte in char.encode())
    return char


def decode_tag(tag: str) -> str:
    """Return the scope name that :func:`encode_tag` turned into ``tag``."""
    return unquote(tag.replace(";", ","), errors="strict")


def write_hlog(path: Path, recorder: Recorder, *, start_epoch_s: float) -> None:
    """Write every scope's interval histograms as an HdrHistogram interval log, format 1.3.

    One line per interval and scope, ordered by interval start then scope name; timestamps are
    seconds relative to ``start_epoch_s`` (the log's StartTime and BaseTime), the max is in
    milliseconds and the histograms hold microseconds. Intervals without requests between a
    scope's first and last are written with an empty histogram, as Java's loggers do.
    """
    if not start_epoch_s >= 0:
        raise ValueError(f"start_epoch_s must not be negative, got {start_epoch_s!r}")
    started = datetime.fromtimestamp(start_epoch_s, tz=UTC).isoformat(timespec="milliseconds")
    header = [
        f"#[Histogram log format version {HLOG_FORMAT_VERSION}]",
        f"#[StartTime: {start_epoch_s:.3f} (seconds since epoch), {started}]",
        f"#[BaseTime: {start_epoch_s:.3f} (seconds since epoch)]",
        _LEGEND,
    ]
    entries: list[tuple[int, str, str]] = []
    for name in recorder.scope_names():
        tag = encode_tag(name)
        # One histogram at a time: only the encoded line is kept.
        for interval in recorder.iter_intervals(name):
            line = (
                f"Tag={tag},{interval.start_s:.3f},{interval.end_s - interval.start_s:.3f},"
                f"{interval.max_ms:.3f},{interval.histogram.encode().decode('ascii')}"
            )
            entries.append((interval.index, name, line))
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    lines = [*header, *(line for _, _, line in entries)]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def read_hlog(path: Path) -> dict[str, list[Interval]]:
    """Read an interval log written by :func:`write_hlog` back into intervals per scope.

    Scopes come sorted by name, intervals by start. The log has no error counts: every
    interval's ``errors`` is 0, and the error counts of a run come from its ``summary.json``.
    An interval's index is its start divided by its length. A line that is neither a comment,
    the legend nor a tagged interval raises ValueError naming the file and line.
    """
    scopes: dict[str, list[Interval]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line or line.startswith(("#", '"')):
            continue
        try:
            scope, interval = _parse_interval(line)
        except ValueError as error:
            raise ValueError(f"{path}:{number}: {error}") from error
        scopes.setdefault(scope, []).append(interval)
    return {
        scope: sorted(scopes[scope], key=lambda interval: interval.index)
        for scope in sorted(scopes)
    }


def _parse_interval(line: str) -> tuple[str, Interval]:
    """Return the scope and interval of one ``Tag=...`` line; ValueError says what is wrong."""
    if not line.startswith("Tag="):
        raise ValueError("expected an interval line starting with 'Tag='")
    fields = line[len("Tag=") :].split(",")
    if len(fields) != 5:
        raise ValueError(f"expected 5 comma-separated fields after 'Tag=', got {len(fields)}")
    tag, start, length, _max, payload = fields
    start_s, length_s = float(start), float(length)
    if not length_s > 0:
        raise ValueError(f"interval length must be positive, got {length}")
    histogram = HdrHistogram.decode(payload)
    interval = Interval(
        index=round(start_s / length_s),
        start_s=start_s,
        end_s=start_s + length_s,
        histogram=histogram,
        requests=int(histogram.get_total_count()),
        errors=0,
    )
    return decode_tag(tag), interval


def write_hgrm(path: Path, histogram: HdrHistogram) -> None:
    """Write a histogram's percentile distribution in HdrHistogram's ``.hgrm`` layout, in ms.

    As Java's ``outputPercentileDistribution(out, 5, 1000.0)``: a line per percentile step (5
    ticks per half distance to 100 %), then the mean, standard deviation, max and total count
    (all scaled to milliseconds but the count) and the bucket geometry. An empty histogram has
    the header and footer only.
    """
    digits = SIGNIFICANT_DIGITS
    lines = [f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>14}", ""]
    for value_us, level, count in _percentile_steps(histogram):
        value = f"{value_us / _US_PER_MS:12.{digits}f} {level / 100.0:2.12f} {count:10d}"
        if level == 100.0:
            lines.append(value)
        else:
            lines.append(f"{value} {1.0 / (1.0 - level / 100.0):14.2f}")
    mean = histogram_mean_us(histogram) / _US_PER_MS
    stddev = histogram_stddev_us(histogram) / _US_PER_MS
    max_ms = int(histogram.get_max_value()) / _US_PER_MS
    lines += [
        f"#[Mean    = {mean:12.{digits}f}, StdDeviation   = {stddev:12.{digits}f}]",
        f"#[Max     = {max_ms:12.{digits}f}, Total count    = {histogram.get_total_count():12d}]",
        f"#[Buckets = {histogram.bucket_count:12d}, SubBuckets     = "
        f"{histogram.sub_bucket_count:12d}]",
    ]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _percentile_steps(histogram: HdrHistogram) -> Iterator[tuple[int, float, int]]:
    """Yield ``(value_us, percentile level, cumulative count)`` as Java's PercentileIterator.

    A step is reported at the first recorded value whose cumulative percentile reaches the
    level; the level then advances by ``100 / (5 * 2 ** (floor(log2(100 / (100 - level))) +
    1))``, so the steps halve every time the distance to 100 % does. Once every value is
    counted, a last step reports the max at 100 %. Values are the highest equivalent value of
    their bucket.
    """
    total = int(histogram.get_total_count())
    if total == 0:
        return
    counts = np.ctypeslib.as_array(histogram.counts)
    level = 0.0
    cumulative = 0
    for index in np.flatnonzero(counts).tolist():
        cumulative += int(counts[index])
        value = int(histogram.get_highest_equivalent_value(histogram.get_value_from_index(index)))
        while 100.0 * cumulative / total >= level:
            yield value, level, cumulative
            ticks = _TICKS_PER_HALF_DISTANCE * 2 ** (
                int(math.log(100.0 / (100.0 - level)) / math.log(2)) + 1
            )
            level += 100.0 / ticks
            if cumulative >= total:
                yield value, 100.0, cumulative
                return
