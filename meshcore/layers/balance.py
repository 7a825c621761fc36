"""The load-balancing layer: picks the endpoint of this try.

No endpoint at all answers 503
with flag ``UH`` (no healthy upstream).
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from meshcore.layers.base import Service
from meshcore.model import Endpoint, Request, Response
from meshcore.policy.balancer import Balancer

__all__ = ["BalanceLayer"]


class BalanceLayer:
    """Sets ``request.endpoint`` with the destination's balancer."""

    def __init__(
        self,
        inner: Service,
        endpoints: Mapping[str, tuple[Endpoint, ...]],
        balancers: Mapping[str, Balancer],
        rng: random.Random,
    ) -> None:
        self.inner = inner
        self._endpoints = endpoints
        self._balancers = balancers
        self._rng = rng

    async def __call__(self, request: Request) -> Response:
        """Pick an endpoint for ``request`` and send it there."""
        balancer = self._balancers[request.destination]
        endpoint = balancer.pick(self._endpoints[request.destination], self._rng, frozenset())
        if endpoint is None:
            return Response.local(503, "no healthy upstream\n", "UH")
        balancer.on_start(endpoint)
        try:
            return await self.inner(request.replace(endpoint=endpoint))
        finally:
            balancer.on_end(endpoint)
