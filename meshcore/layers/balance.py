"""The load-balancing layer: picks the endpoint of this try, and learns from how it went.

Candidates are the endpoints of the route's subset, minus the hosts outlier detection has
ejected and the hosts whose failure-accrual breaker is open; every host skipped is noted in
the trace with the reason (``host skipped: ejected until 42.0s``). Among the rest, the
balancer picks, avoiding hosts this request already tried while others remain. No candidate
at all answers 503 with flag ``UH`` (no healthy upstream; Istio's panic threshold is 0, so
ejected hosts are never used as a last resort).

After the try, its result goes to the balancer (latency, for PEAK_EWMA), the outlier detector
and the breaker: an answer by its status, a try without one (``UF``, ``UC``, a cancelled try:
per-try or route timeout) as a local-origin failure. Overflows (``UO``) say nothing about the
host and are not recorded. An ejection that a result causes is reported to ``on_ejection``
(the sidecar counts it on the edge, ``GET /stats/edges``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

import trio

from meshcore.layers.base import Service
from meshcore.model import Endpoint, Request, Response
from meshcore.policy.accrual import FailureAccrual
from meshcore.policy.balancer import Balancer
from meshcore.policy.outlier import OutlierDetector

__all__ = ["BalanceLayer"]

_NOTHING_TRIED: frozenset[Endpoint] = frozenset()
_NO_ANSWER = frozenset({"UF", "UC"})


class BalanceLayer:
    """Sets ``request.endpoint`` with the destination's balancer, over healthy hosts."""

    def __init__(
        self,
        inner: Service,
        members: Mapping[tuple[str, str], tuple[Endpoint, ...]],
        balancers: Mapping[str, Balancer],
        rng: random.Random,
        *,
        detectors: Mapping[str, OutlierDetector] | None = None,
        accruals: Mapping[str, FailureAccrual] | None = None,
        on_ejection: Callable[[str, float], None] | None = None,
    ) -> None:
        self.inner = inner
        self._members = members
        self._balancers = balancers
        self._rng = rng
        self._detectors = detectors or {}
        self._accruals = accruals or {}
        self._on_ejection = on_ejection  # (destination, now) when a result ejects a host

    async def __call__(self, request: Request) -> Response:
        """Pick an endpoint for ``request`` and send it there."""
        destination = request.destination
        now = trio.current_time()
        candidates: list[Endpoint] | tuple[Endpoint, ...] = self._members.get(
            (destination, request.subset), ()
        )
        trace = request.trace
        detector = self._detectors.get(destination)
        if detector is not None:
            candidates, ejected = detector.available(candidates, now)
            if trace is not None:
                for host, until in ejected:
                    trace.skipped(f"host skipped: {host} ejected until {until:.1f}s")
        accrual = self._accruals.get(destination)
        if accrual is not None:
            admitted = [e for e in candidates if accrual.admits(e, now)]
            if trace is not None:
                for host in candidates:
                    if host not in admitted:
                        penalty_end = accrual.open_until(host)
                        why = (
                            "probe in flight"
                            if penalty_end is None
                            else f"open until {penalty_end:.1f}s"
                        )
                        trace.skipped(f"host skipped: {host} breaker {why}")
            candidates = admitted
        tried = trace.tried if trace is not None and trace.tried else _NOTHING_TRIED
        balancer = self._balancers[destination]
        endpoint = balancer.pick(candidates, self._rng, frozenset(tried), now)
        if endpoint is None:
            return Response.local(503, "no healthy upstream\n", "UH")
        if trace is not None:
            trace.chose(endpoint)
        balancer.on_start(endpoint)
        if accrual is not None:
            accrual.on_start(endpoint)
        response: Response | None = None
        try:
            response = await self.inner(request.replace(endpoint=endpoint))
            return response
        finally:
            end = trio.current_time()
            balancer.on_end(endpoint, end - now, end)
            self._learn(destination, endpoint, response, end)

    def _learn(
        self, destination: str, endpoint: Endpoint, response: Response | None, now: float
    ) -> None:
        if response is not None and "UO" in response.flags:
            return
        status = None
        if response is not None and not _NO_ANSWER.intersection(response.flags):
            status = response.status
        detector = self._detectors.get(destination)
        if detector is not None:
            ejected = detector.record(endpoint, status, now)
            if ejected and self._on_ejection is not None:
                self._on_ejection(destination, now)
        accrual = self._accruals.get(destination)
        if accrual is not None:
            accrual.record(endpoint, status is None or status >= 500, now)
