"""Reading typed configuration out of plain mappings, collecting every problem at once.

Both configuration languages of meshchaos (the sidecar's and the experiment file's) are YAML
mappings turned into frozen dataclasses. :class:`FieldReader` walks one mapping: each ``take``
pops a field, converts it and records a :class:`Problem` (with the field's path) instead of
raising, so one pass reports every mistake. ``finish`` reports the fields nobody took, with the
closest known name as a suggestion. Whoever holds the source text maps a problem's path to a
``FILE:LINE:COL``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from meshcore.units import UnitError

__all__ = [
    "ConfigError",
    "FieldReader",
    "Path",
    "Problem",
    "boolean",
    "int_at_least",
    "one_of",
    "string",
]

T = TypeVar("T")
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One mistake in a configuration: where (a path of keys and indexes) and what."""

    path: Path
    message: str
    severity: str = "error"  # "error" | "warning"

    def dotted_path(self) -> str:
        """Return the path as users write it: ``spec.services[1].replicas``."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text


class ConfigError(ValueError):
    """A configuration has one or more problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.dotted_path() or '<top>'}: {p.message}" for p in problems))


_MISSING: Any = object()


class FieldReader:
    """Takes typed fields out of one mapping, recording problems in a shared list.

    >>> problems: list[Problem] = []
    >>> reader = FieldReader({"replicas": "two"}, ("spec",), problems)
    >>> reader.take("replicas", int_at_least(1), default=1)
    1
    >>> problems[0].message
    "replicas: expected a whole number, got 'two'"
    """

    def __init__(self, mapping: object, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        if mapping is None:
            mapping = {}
        if not isinstance(mapping, Mapping):
            self.problem((), f"expected a mapping, got {_describe(mapping)}")
            mapping = {}
        self._fields: dict[str, Any] = {str(k): v for k, v in mapping.items()}
        self._known: set[str] = set()

    def problem(self, subpath: Path, message: str, severity: str = "error") -> None:
        """Record a problem at ``self.path + subpath``."""
        self.problems.append(Problem(self.path + subpath, message, severity))

    def has(self, key: str) -> bool:
        """Tell whether the mapping has ``key`` (and mark it known)."""
        self._known.add(key)
        return key in self._fields

    def take(
        self,
        key: str,
        convert: Callable[[Any], T],
        default: T = _MISSING,
    ) -> T:
        """Convert and return field ``key``; on a problem record it and return ``default``.

        Without a default the field is required.
        """
        self._known.add(key)
        if key not in self._fields or self._fields[key] is None:
            if default is _MISSING:
                self.problem((key,), f"{key}: required field is missing")
                return None  # type: ignore[return-value]  # a problem was recorded
            return default
        try:
            return convert(self._fields[key])
        except (UnitError, ValueError, TypeError) as error:
            self.problem((key,), f"{key}: {error}")
            return None if default is _MISSING else default  # type: ignore[return-value]

    def names(self) -> list[str]:
        """Return every key of a mapping whose keys are user-chosen names (and mark them known)."""
        self._known.update(self._fields)
        return list(self._fields)

    def raw(self, key: str) -> Any:
        """Return field ``key`` unconverted (``None`` when absent), for nested readers."""
        self._known.add(key)
        return self._fields.get(key)

    def child(self, key: str) -> FieldReader:
        """Return a reader for the nested mapping under ``key`` (empty when absent)."""
        return FieldReader(self.raw(key), (*self.path, key), self.problems)

    def items(self, key: str) -> list[tuple[Path, Any]]:
        """Return ``(path, item)`` for each element of the list under ``key``."""
        value = self.raw(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem((key,), f"{key}: expected a list, got {_describe(value)}")
            return []
        return [((*self.path, key, index), item) for index, item in enumerate(value)]

    def finish(self) -> None:
        """Record a problem for every field that no ``take`` asked for."""
        for key in self._fields:
            if key not in self._known:
                close = difflib.get_close_matches(key, sorted(self._known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                known = ", ".join(sorted(self._known))
                self.problem((key,), f"unknown field {key!r}{hint}; known fields: {known}")


def _describe(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


def int_at_least(minimum: int) -> Callable[[object], int]:
    """Return a converter accepting whole numbers >= ``minimum``."""

    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {value!r}")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return convert


def one_of(*choices: str) -> Callable[[object], str]:
    """Return a converter accepting exactly one of ``choices``."""

    def convert(value: object) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return convert


def string(value: object) -> str:
    """Accept a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def boolean(value: object) -> bool:
    """Accept ``true`` or ``false``."""
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value
