"""Per-edge measurement in a sidecar: latency, retry attempts and ejections per second.

Every outbound request is one edge ``source -> destination`` as the calling sidecar sees it
(Istio's ``reporter="source"``). :class:`EdgeRecorder` keeps, per edge and status class, an HDR
latency histogram per one-second interval (the duration the caller saw, every try and back-off
included), and per edge and interval the counters ``attempts`` (upstream tries, from the retry
layer's trace) and ``ejections`` (hosts outlier detection ejected). A request goes into the
interval of its start, with its tries; an ejection into the interval it happened in.

Intervals count from the *origin*: the start of the first request recorded, until
:meth:`EdgeRecorder.reset` restarts the measurement (``POST /stats/edges/reset``). The harness
resets every sidecar at the start of measurement, so that interval ``i`` of every sidecar
covers the same second as interval ``i`` of the load generator (each process has its own trio
clock, so absolute times would not compare). What happened before the origin is not kept.

The recorder's scopes are named as the harness names them: ``edge=a->b,status=2xx`` for the
latencies and ``attempts`` of the requests of one status class, ``edge=a->b`` for the
``ejections`` of the edge. A request answered before any try (a route not found, an injected
abort) counts 0 attempts. 5xx answers count as errors.
"""

from __future__ import annotations

from typing import Any

from meshcore.hdr import Recorder

__all__ = ["EdgeRecorder", "edge_scope"]


def edge_scope(source: str, destination: str, status: str | None = None) -> str:
    """Name the scope of an edge, or of one of its status classes (``2xx``..``5xx``)."""
    name = f"edge={source}->{destination}"
    return name if status is None else f"{name},status={status}"


class EdgeRecorder:
    """The edge histograms and counters of one sidecar, from an origin on its trio clock."""

    def __init__(self) -> None:
        self._origin: float | None = None
        self._reset = False
        self._recorder = Recorder()
        # The scopes of each (source, destination, status class): named once, not per request.
        self._scopes: dict[tuple[str, str, int], tuple[str]] = {}

    def reset(self, now: float) -> None:
        """Drop everything recorded and count intervals from ``now``."""
        self._origin = now
        self._reset = True
        self._recorder = Recorder()

    def request(
        self,
        source: str,
        destination: str,
        *,
        started: float,
        duration_s: float,
        status: int,
        attempts: int,
    ) -> None:
        """Record one finished outbound request that started at ``started`` (trio time)."""
        at_s = self._since_origin(started)
        if at_s < 0:
            return  # began before the measurement did (a reset came while it was in flight)
        key = (source, destination, status // 100)
        scopes = self._scopes.get(key)
        if scopes is None:
            scopes = self._scopes[key] = (edge_scope(source, destination, f"{key[2]}xx"),)
        self._recorder.record(scopes, at_s, duration_s, error=status >= 500)
        self._recorder.count(scopes, at_s, "attempts", attempts)

    def ejection(self, source: str, destination: str, now: float) -> None:
        """Count one host of ``destination`` ejected by outlier detection at ``now``."""
        at_s = self._since_origin(now)
        if at_s >= 0:
            self._recorder.count((edge_scope(source, destination),), at_s, "ejections")

    def _since_origin(self, at: float) -> float:
        if self._origin is None:
            self._origin = at
        return at - self._origin

    def document(self) -> dict[str, Any]:
        """Return ``GET /stats/edges``: every scope's intervals, histograms HDR-encoded."""
        recorder = self._recorder
        return {
            "interval_s": recorder.interval_s,
            "reset": self._reset,
            "scopes": {name: recorder.encode_scope(name) for name in recorder.scope_names()},
        }
