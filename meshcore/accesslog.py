"""A standalone sidecar's access log: JSON lines on standard output, written in batches.

Writing and flushing one line per request cost a system call per request (several percent of
a sidecar's CPU under load). :class:`JsonLinesLog` encodes each entry when it comes, keeps the
lines in memory, and writes them together: every :data:`FLUSH_INTERVAL_S` (its
:meth:`~JsonLinesLog.run` task), as soon as :data:`MAX_BUFFERED_LINES` wait, and when the task
stops (a SIGINT or SIGTERM shutdown, or a crash that unwinds the sidecar's nursery). The owner
also calls :meth:`~JsonLinesLog.flush` after the sidecar stops. What can be lost is what a
process killed outright (SIGKILL, a fatal signal) had not written yet: at most the last
:data:`FLUSH_INTERVAL_S` of lines.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

import trio

__all__ = ["FLUSH_INTERVAL_S", "MAX_BUFFERED_LINES", "JsonLinesLog"]

FLUSH_INTERVAL_S = 0.2
MAX_BUFFERED_LINES = 1024
# One encoder for every line: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


class JsonLinesLog:
    """An access-log sink (``log(entry)``) writing one JSON line per entry to ``stream``.

    ``stream`` is standard output unless given; it is looked up when the lines are written,
    so a test's captured output works too.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lines: list[str] = []

    def __call__(self, entry: dict[str, Any]) -> None:
        """Queue ``entry`` as one JSON line."""
        lines = self._lines
        lines.append(_ENCODER.encode(entry))
        if len(lines) >= MAX_BUFFERED_LINES:
            self.flush()

    def flush(self) -> None:
        """Write and flush every queued line."""
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        stream = sys.stdout if self._stream is None else self._stream
        stream.write(text)
        stream.flush()

    async def run(self) -> None:
        """Flush every :data:`FLUSH_INTERVAL_S` until cancelled, and once more when stopping."""
        try:
            while True:
                await trio.sleep(FLUSH_INTERVAL_S)
                self.flush()
        finally:
            self.flush()
