"""Latency distributions for the ``sleep`` steps of synthetic services.

A distribution draws one duration in seconds from a seeded :class:`random.Random`, so a run is
reproducible from its seed. In an experiment file a distribution is either a plain duration
(``sleep: 2ms``, a :class:`Fixed` value) or a mapping naming its ``distribution``::

    sleep: {distribution: lognormal, median: 5ms, p99: 40ms}

Each class checks its parameters when built (``ValueError``), so a distribution made in code is
as valid as one read from a file; :func:`read_distribution` turns those errors into problems
with the field's path.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from meshcore.fields import FieldReader, one_of
from meshcore.units import format_duration, parse_duration

__all__ = [
    "DISTRIBUTIONS",
    "Distribution",
    "Exponential",
    "Fixed",
    "Histogram",
    "Lognormal",
    "Normal",
    "Pareto",
    "Uniform",
    "read_distribution",
]

# The standard normal quantile of 0.99: a lognormal's p99 is exp(mu + Z99 * sigma).
Z99 = 2.3263478740408408


class Distribution(Protocol):
    """What every distribution offers: a seeded draw and a readable description."""

    def sample(self, rng: random.Random) -> float:
        """Draw one duration in seconds (never negative)."""
        ...

    def describe(self) -> str:
        """Describe the distribution the way a user writes it."""
        ...


def _check_duration(name: str, value_s: float) -> None:
    if not math.isfinite(value_s) or value_s < 0:
        raise ValueError(f"{name} must be a duration of at least 0s, got {value_s!r}")


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always the same duration."""

    value_s: float

    def __post_init__(self) -> None:
        _check_duration("value", self.value_s)

    def sample(self, rng: random.Random) -> float:
        """Return ``value_s`` (draws nothing from ``rng``)."""
        return self.value_s

    def describe(self) -> str:
        """Describe as ``2ms``."""
        return format_duration(self.value_s)


@dataclass(frozen=True, slots=True)
class Uniform:
    """Any duration between ``min_s`` and ``max_s``, equally likely."""

    min_s: float
    max_s: float

    def __post_init__(self) -> None:
        _check_duration("min", self.min_s)
        _check_duration("max", self.max_s)
        if self.max_s < self.min_s:
            raise ValueError(
                f"max ({format_duration(self.max_s)}) must not be below "
                f"min ({format_duration(self.min_s)})"
            )

    def sample(self, rng: random.Random) -> float:
        """Draw uniformly from [min_s, max_s]."""
        return rng.uniform(self.min_s, self.max_s)

    def describe(self) -> str:
        """Describe as ``uniform 1ms..5ms``."""
        return f"uniform {format_duration(self.min_s)}..{format_duration(self.max_s)}"


@dataclass(frozen=True, slots=True)
class Normal:
    """A normal distribution, clamped at 0 (a negative draw sleeps 0s)."""

    mean_s: float
    stddev_s: float

    def __post_init__(self) -> None:
        _check_duration("mean", self.mean_s)
        _check_duration("stddev", self.stddev_s)

    def sample(self, rng: random.Random) -> float:
        """Draw from N(mean, stddev) and clamp at 0."""
        return max(0.0, rng.gauss(self.mean_s, self.stddev_s))

    def describe(self) -> str:
        """Describe as ``normal mean 5ms stddev 1ms``."""
        return f"normal mean {format_duration(self.mean_s)} stddev {format_duration(self.stddev_s)}"


@dataclass(frozen=True, slots=True)
class Lognormal:
    """A lognormal distribution given by the two numbers people know: its median and its p99.

    ``mu = ln(median)`` and ``sigma = (ln(p99) - ln(median)) / Z99``, the usual shape of
    service latency (a long right tail).
    """

    median_s: float
    p99_s: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.median_s) or self.median_s <= 0:
            raise ValueError(f"median must be a duration above 0s, got {self.median_s!r}")
        if not math.isfinite(self.p99_s) or self.p99_s < self.median_s:
            raise ValueError(
                f"p99 ({format_duration(self.p99_s)}) must not be below "
                f"median ({format_duration(self.median_s)})"
            )

    @property
    def mu(self) -> float:
        """The mean of the underlying normal distribution."""
        return math.log(self.median_s)

    @property
    def sigma(self) -> float:
        """The standard deviation of the underlying normal distribution."""
        return (math.log(self.p99_s) - math.log(self.median_s)) / Z99

    def sample(self, rng: random.Random) -> float:
        """Draw ``exp(N(mu, sigma))``."""
        return rng.lognormvariate(self.mu, self.sigma)

    def describe(self) -> str:
        """Describe as ``lognormal median 5ms p99 40ms``."""
        return (
            f"lognormal median {format_duration(self.median_s)} p99 {format_duration(self.p99_s)}"
        )


@dataclass(frozen=True, slots=True)
class Exponential:
    """An exponential distribution with mean ``mean_s`` (memoryless waits)."""

    mean_s: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.mean_s) or self.mean_s <= 0:
            raise ValueError(f"mean must be a duration above 0s, got {self.mean_s!r}")

    def sample(self, rng: random.Random) -> float:
        """Draw with rate ``1 / mean_s``."""
        return rng.expovariate(1.0 / self.mean_s)

    def describe(self) -> str:
        """Describe as ``exponential mean 5ms``."""
        return f"exponential mean {format_duration(self.mean_s)}"


@dataclass(frozen=True, slots=True)
class Pareto:
    """A Pareto distribution: at least ``scale_s``, with a heavy tail (smaller shape, heavier)."""

    scale_s: float
    shape: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.scale_s) or self.scale_s <= 0:
            raise ValueError(f"scale must be a duration above 0s, got {self.scale_s!r}")
        if not math.isfinite(self.shape) or self.shape <= 0:
            raise ValueError(f"shape must be a number above 0, got {self.shape!r}")

    def sample(self, rng: random.Random) -> float:
        """Draw ``scale_s * X`` with X Pareto-distributed (X >= 1) of the given shape."""
        return self.scale_s * rng.paretovariate(self.shape)

    def describe(self) -> str:
        """Describe as ``pareto scale 1ms shape 1.5``."""
        return f"pareto scale {format_duration(self.scale_s)} shape {self.shape:g}"


@dataclass(frozen=True, slots=True)
class Histogram:
    """Measured latencies replayed: each ``(value_s, weight)`` is drawn in proportion to weight."""

    values: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("a histogram needs at least one value")
        for value_s, weight in self.values:
            _check_duration("value", value_s)
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"weight must be a number of at least 0, got {weight!r}")
        if sum(weight for _, weight in self.values) <= 0:
            raise ValueError("a histogram needs a weight above 0")

    def sample(self, rng: random.Random) -> float:
        """Draw one of the values, in proportion to their weights."""
        values = [value_s for value_s, _ in self.values]
        weights = [weight for _, weight in self.values]
        return rng.choices(values, weights)[0]

    def describe(self) -> str:
        """Describe as ``histogram 5ms x9, 50ms x1``."""
        parts = (f"{format_duration(value_s)} x{weight:g}" for value_s, weight in self.values)
        return "histogram " + ", ".join(parts)


def _positive_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"expected a number above 0, got {value!r}")
    return float(value)


def _weight(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"expected a number of at least 0, got {value!r}")
    return float(value)


def _read_histogram_values(reader: FieldReader) -> tuple[tuple[float, float], ...]:
    values = []
    for path, item in reader.items("values"):
        entry = FieldReader(item, path, reader.problems)
        value_s = entry.take("value", parse_duration)
        weight = entry.take("weight", _weight, default=1.0)
        entry.finish()
        values.append((value_s, weight))
    if not reader.has("values"):
        reader.problem(("values",), "values: required field is missing")
    return tuple(values)


# How each named distribution reads its fields; keys are the names of the ``distribution`` field.
_READERS: dict[str, Callable[[FieldReader], Any]] = {
    "fixed": lambda r: Fixed(r.take("value", parse_duration)),
    "uniform": lambda r: Uniform(r.take("min", parse_duration), r.take("max", parse_duration)),
    "normal": lambda r: Normal(r.take("mean", parse_duration), r.take("stddev", parse_duration)),
    "lognormal": lambda r: Lognormal(
        r.take("median", parse_duration), r.take("p99", parse_duration)
    ),
    "exponential": lambda r: Exponential(r.take("mean", parse_duration)),
    "pareto": lambda r: Pareto(r.take("scale", parse_duration), r.take("shape", _positive_number)),
    "histogram": lambda r: Histogram(_read_histogram_values(r)),
}

DISTRIBUTIONS = tuple(_READERS)


def read_distribution(reader: FieldReader, key: str) -> Distribution | None:
    """Read the distribution under ``key``: a duration, or a mapping naming its ``distribution``.

    Problems are recorded in ``reader``; ``None`` is returned when the field is invalid.
    """
    if not isinstance(reader.raw(key), dict):
        value_s = reader.take(key, parse_duration)
        return None if value_s is None else Fixed(value_s)
    fields = reader.child(key)
    problems_before = len(fields.problems)
    kind = fields.take("distribution", one_of(*DISTRIBUTIONS))
    if kind is None:
        fields.names()  # the other fields depend on the distribution: say nothing about them
        return None
    try:
        distribution: Distribution | None = _READERS[kind](fields)
    except (TypeError, ValueError) as error:
        # A field was already reported as invalid (it came back as None), or the fields are
        # each valid but do not fit together (p99 below median): report the latter only.
        if len(fields.problems) == problems_before:
            fields.problem((), f"{key}: {error}")
        distribution = None
    fields.finish()
    return distribution
