"""Parsing of the units users write in configuration files.

Durations are strings with units (``250ms``, ``1.5s``, ``2m``), percentages are strings
(``0.1%``) or plain numbers (``50`` meaning 50 %), sizes are ``512B`` or ``16KiB``, rates
``200/s``. Inside the code a duration is always seconds as a float, a percentage a fraction
in [0, 1], a size bytes as an int and a rate requests per second as a float.

Every parser raises :class:`UnitError` with a message that names what was expected; callers
add the file, line and field.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "UnitError",
    "format_duration",
    "parse_bandwidth",
    "parse_duration",
    "parse_percent",
    "parse_rate",
    "parse_size",
]


class UnitError(ValueError):
    """A value does not have the unit (or the form) that its field requires."""


_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(rf"^{_NUMBER}\s*(us|µs|ms|s|m|h)$")
_DURATION_SECONDS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(rf"^{_NUMBER}\s*(B|KB|KiB|MB|MiB|GB|GiB)$")
_SIZE_BYTES = {
    "B": 1,
    "KB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
}
_RATE = re.compile(rf"^{_NUMBER}\s*/\s*(s|m|h)$")
_PERCENT = re.compile(rf"^{_NUMBER}\s*%$")


def _finite_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_duration(value: object) -> float:
    """Return a duration in seconds from ``"250ms"``, ``"1.5s"``, ``"2m"``, ``"1h"`` or ``"10us"``.

    A bare number is refused (except 0): a duration without a unit is ambiguous.
    """
    if _finite_number(value) == 0:
        return 0.0
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            return float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
    raise UnitError(f"expected a duration with a unit such as 250ms, 1.5s or 2m, got {value!r}")


def format_duration(seconds: float) -> str:
    """Format seconds the way a user writes them: ``"250ms"``, ``"1.5s"``, ``"0s"``."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


def parse_percent(value: object) -> float:
    """Return a fraction in [0, 1] from ``"0.1%"`` or a number of percent (``50`` is 50 %)."""
    number = _finite_number(value)
    if number is None and isinstance(value, str):
        match = _PERCENT.match(value.strip())
        if match:
            number = float(match.group(1))
    if number is None:
        raise UnitError(f"expected a percentage such as 50 or '0.1%', got {value!r}")
    if not 0 <= number <= 100:
        raise UnitError(f"a percentage must lie between 0 and 100, got {value!r}")
    return number / 100


def parse_size(value: object) -> int:
    """Return a size in bytes from ``"512B"``, ``"16KiB"``, ``"1MB"`` or a whole number of bytes."""
    number = _finite_number(value)
    if number is not None and number >= 0 and number == int(number):
        return int(number)
    if isinstance(value, str):
        match = _SIZE.match(value.strip())
        if match:
            return round(float(match.group(1)) * _SIZE_BYTES[match.group(2)])
    raise UnitError(f"expected a size such as 512B or 16KiB, got {value!r}")


def parse_rate(value: object) -> float:
    """Return requests per second from ``"200/s"``, ``"600/m"`` or a plain number per second."""
    number = _finite_number(value)
    if number is None and isinstance(value, str):
        match = _RATE.match(value.strip())
        if match:
            number = float(match.group(1)) / _DURATION_SECONDS[match.group(2)]
    if number is None or number < 0:
        raise UnitError(f"expected a rate such as 200/s, got {value!r}")
    return number


def parse_bandwidth(value: object) -> float:
    """Return bytes per second from ``"10KB/s"`` or ``"1MiB/s"`` (Toxiproxy's bandwidth toxic)."""
    if isinstance(value, str) and value.strip().endswith("/s"):
        return float(parse_size(value.strip()[:-2]))
    raise UnitError(f"expected a bandwidth such as 10KB/s, got {value!r}")
