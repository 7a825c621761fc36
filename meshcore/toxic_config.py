"""Reading connection-level faults: toxics (two spellings), partitions, certificate faults.

A toxic is written the experiment file's way, ``toxic: {type: latency, latency: 100ms,
jitter: 10ms, stream: downstream, percent: 50}`` (units on every value, camelCase), or, in
the admin API, Toxiproxy's way, ``{type: latency, stream: downstream, toxicity: 0.5,
attributes: {latency: 100, jitter: 10}}`` (milliseconds, microseconds for the slicer's delay,
KB/s for bandwidth, snake_case), so that Toxiproxy users carry their knowledge over. Both
build the same :class:`~meshcore.policy.toxics.ToxicSpec`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshcore.fields import FieldReader, one_of, string
from meshcore.policy.toxics import STREAMS, TOXICS, ToxicSpec
from meshcore.units import parse_bandwidth, parse_duration, parse_percent, parse_size

__all__ = ["CERTIFICATE_FAULTS", "TOXIC_FIELDS", "read_certificate_fault", "read_toxic"]

#: The security faults: the sidecar presents a bad certificate until the fault is removed.
CERTIFICATE_FAULTS = ("certExpired", "wrongIdentity", "untrustedCa")


def _number(scale: float) -> Callable[[object], float]:
    def convert(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"expected a number of 0 or more, got {value!r}")
        return float(value) * scale

    return convert


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number of 0 or more, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ToxicField:
    """One attribute of a toxic: its names and converters in both spellings."""

    argument: str  # the toxic class's field
    name: str  # in experiment files (camelCase, with units)
    convert: Callable[[object], Any]
    toxiproxy: str  # in Toxiproxy's ``attributes``
    toxiproxy_convert: Callable[[object], Any]
    required: bool = True


_MS = _number(0.001)
TOXIC_FIELDS: dict[str, tuple[ToxicField, ...]] = {
    "latency": (
        ToxicField("latency_s", "latency", parse_duration, "latency", _MS),
        ToxicField("jitter_s", "jitter", parse_duration, "jitter", _MS, required=False),
    ),
    "bandwidth": (
        ToxicField("rate_bytes_per_s", "rate", parse_bandwidth, "rate", _number(1000.0)),
    ),
    "slow_close": (ToxicField("delay_s", "delay", parse_duration, "delay", _MS),),
    "timeout": (ToxicField("timeout_s", "timeout", parse_duration, "timeout", _MS),),
    "reset_peer": (
        ToxicField("timeout_s", "timeout", parse_duration, "timeout", _MS, required=False),
    ),
    "slicer": (
        ToxicField("average_size", "averageSize", parse_size, "average_size", _whole),
        ToxicField("size_variation", "sizeVariation", parse_size, "size_variation", _whole, False),
        ToxicField("delay_s", "delay", parse_duration, "delay", _number(1e-6), required=False),
    ),
    "limit_data": (ToxicField("limit_bytes", "bytes", parse_size, "bytes", _whole),),
}
assert set(TOXIC_FIELDS) == set(TOXICS)  # every registered toxic can be read


def _toxicity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"expected a probability between 0 and 1, got {value!r}")
    return float(value)


def read_toxic(reader: FieldReader) -> ToxicSpec | None:
    """Read a toxic in either spelling (Toxiproxy's when it has ``attributes`` or ``toxicity``).

    Problems go to the reader; the caller finishes it. Returns ``None`` when it has problems.
    """
    before = len(reader.problems)
    toxic_type = reader.take("type", one_of(*TOXICS))
    stream = reader.take("stream", one_of(*STREAMS), default="downstream")
    toxiproxy = reader.has("attributes") or reader.has("toxicity")
    if toxiproxy:
        toxicity = reader.take("toxicity", _toxicity, default=1.0)
        values = reader.child("attributes")
    else:
        toxicity = reader.take("percent", parse_percent, default=1.0)
        values = reader
    if toxic_type is None:
        values.names()  # the other fields depend on the type: say nothing about them
        return None
    arguments: dict[str, Any] = {}
    for spec in TOXIC_FIELDS[toxic_type]:
        key, convert = (spec.toxiproxy, spec.toxiproxy_convert) if toxiproxy else (
            spec.name, spec.convert)  # fmt: skip
        value = values.take(key, convert) if spec.required else values.take(key, convert, None)
        if value is not None:
            arguments[spec.argument] = value
    if toxiproxy:
        values.finish()
    if len(reader.problems) > before:
        return None
    return ToxicSpec(TOXICS[toxic_type](**arguments), stream, toxicity)


def read_certificate_fault(reader: FieldReader, kind: str) -> str | None:
    """Read a security fault's body; return the service ``wrongIdentity`` impersonates.

    ``certExpired`` and ``untrustedCa`` take no field; ``wrongIdentity`` takes an optional
    ``service`` (default ``impostor``). The caller finishes the reader.
    """
    if kind == "wrongIdentity":
        service: str = reader.take("service", string, default="impostor")
        return service
    return None
