"""The sidecars' edge measurements, brought into the run's recorder (docs/load.md).

Every sidecar records its outbound edges (:mod:`meshcore.edges`): per edge and status class an
HDR histogram per one-second interval, and per edge the ``attempts`` and ``ejections``
counters. The run resets that measurement in every sidecar at the start of measurement
(:func:`reset_edges`), so that the sidecars' intervals line up with the load generator's, and
collects it at the end (:func:`collect_edges`), before the topology goes down, through the
topology's network (the same seam in real and simulate mode).

:func:`merge_edges` adds each interval exactly (HDR decode, counts add up) to the scopes

- ``edge=a->b``: what ``a``'s sidecars saw of their requests to ``b``;
- ``service=b``: the sum over every edge into ``b``, that is what ``b``'s callers saw (the
  same point of view as the load generator's at the load target);
- each of them with the phase of the interval: ``phase=fault,edge=a->b``;
- with a status class (``edge=a->b,status=5xx``) only where an SLO asks for it.

An interval belongs to the phase its start falls in, so a phase boundary inside a second
attributes that second to the phase it began in. Intervals from ``measured_s`` on (after an
early stop) are left out. A sidecar that never saw the reset (restarted by a ``kill`` fault)
counts from its own start, not the run's: its measurement is left out.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import trio

from harness.experiment import Experiment
from harness.gating import measured_where
from harness.phases import Phase, phase_at
from harness.recorder import Recorder
from harness.slo import scope_name
from meshcore.errors import UpstreamError
from meshcore.model import Endpoint, Request
from meshcore.transport.client import request_once
from meshcore.transport.network import Network

__all__ = ["collect_edges", "merge_edges", "reset_edges", "status_scopes"]

_RESET = Request("POST", "/stats/edges/reset")
_COLLECT = Request("GET", "/stats/edges")


async def reset_edges(network: Network, admins: Iterable[Endpoint]) -> None:
    """Start the edge measurement of every sidecar now, all at once (a sidecar down is skipped)."""

    async def reset(admin: Endpoint) -> None:
        with contextlib.suppress(UpstreamError):
            await request_once(network, admin, _RESET)

    async with trio.open_nursery() as nursery:
        for admin in admins:
            nursery.start_soon(reset, admin)


async def collect_edges(
    network: Network, admins: Iterable[Endpoint], *, timeout_s: float
) -> list[dict[str, Any]]:
    """Return every sidecar's ``GET /stats/edges`` document that comes within ``timeout_s``.

    Best effort: a sidecar that is down, paused or answers garbage is left out.
    """
    documents: list[dict[str, Any]] = []

    async def collect(admin: Endpoint) -> None:
        with trio.move_on_after(timeout_s), contextlib.suppress(UpstreamError, ValueError):
            response = await request_once(network, admin, _COLLECT)
            if response.status == 200:
                documents.append(json.loads(response.body))

    async with trio.open_nursery() as nursery:
        for admin in admins:
            nursery.start_soon(collect, admin)
    # Sidecars answer in any order; merging is exact either way, this keeps runs reproducible.
    documents.sort(key=lambda document: str(document.get("workload", "")))
    return documents


def status_scopes(experiment: Experiment) -> set[str]:
    """Return the edge and service scopes with a status class that some SLO asks for."""
    wanted = set()
    for slo in experiment.slos:
        where = measured_where(slo.where, experiment.load.target)
        if "status" in where and ("edge" in where or "service" in where):
            wanted.add(scope_name(where))
            wanted.add(scope_name({**where, "phase": "baseline"}))
    return wanted


def merge_edges(
    recorder: Recorder,
    documents: Iterable[Mapping[str, Any]],
    phases: list[Phase],
    *,
    measured_s: float,
    wanted: Collection[str] = (),
) -> None:
    """Add the sidecars' edge intervals to ``recorder`` (see the module's scopes).

    ``wanted`` names the status scopes to fill (:func:`status_scopes`).
    """
    for document in documents:
        if not document.get("reset"):
            continue  # counts from its own start, not the run's: misaligned
        interval_s = float(document["interval_s"])
        if interval_s != recorder.interval_s:
            raise ValueError(
                f"sidecar intervals of {interval_s} s, recorder's {recorder.interval_s}"
            )
        for name, intervals in document["scopes"].items():
            parts = dict(part.split("=", 1) for part in name.split(","))
            edge = parts["edge"]
            destination = edge.partition("->")[2]
            for item in intervals:
                start_s = int(item["index"]) * interval_s
                if start_s >= measured_s:
                    continue
                phase = phase_at(phases, start_s)
                for scope in _scopes(edge, destination, phase, parts.get("status"), wanted):
                    recorder.add_encoded(scope, [item])


def _scopes(
    edge: str, destination: str, phase: str | None, status: str | None, wanted: Collection[str]
) -> Sequence[str]:
    names = []
    for base in ({"edge": edge}, {"service": destination}):
        for where in (base, {**base, "phase": phase} if phase is not None else None):
            if where is None:
                continue
            names.append(scope_name(where))
            if status is not None:
                with_status = scope_name({**where, "status": status})
                if with_status in wanted:
                    names.append(with_status)
    return names
