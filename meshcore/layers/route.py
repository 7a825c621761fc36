"""The outbound route layer: which destination, which subset, and whether to mirror.

The local app names the destination in the ``Host`` header (``payments`` or
``payments:8080``), as a plain-HTTP client does through an Istio sidecar. A host the sidecar
has no destination for is answered 404 with Envoy's flag ``NR`` (no route), and so is a
request that none of its destination's ``http`` routes matches. The chosen route picks the
subset (weighted, seeded) and may mirror the request: a copy goes, fire and forget, to the
mirror's host with ``-shadow`` appended to its Host header (Envoy's convention), below the
retry layer so it is never retried, and its answer is ignored.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping

from meshcore.layers.base import Service
from meshcore.model import Request, Response
from meshcore.policy.routing import HttpRoute, Mirror, select_route

__all__ = ["RouteLayer"]

Spawn = Callable[[Callable[[], Awaitable[None]]], None]


class RouteLayer:
    """Sets ``request.destination`` and ``subset`` from the Host header and the routes."""

    def __init__(
        self,
        inner: Service,
        routes: Mapping[str, tuple[HttpRoute, ...]],
        rng: random.Random,
        *,
        mirror_to: Service | None = None,
        spawn: Spawn | None = None,
    ) -> None:
        self.inner = inner
        self._routes = routes
        self._rng = rng
        self._mirror_to = mirror_to
        self._spawn = spawn

    async def __call__(self, request: Request) -> Response:
        """Route ``request`` to its destination service."""
        host = request.host
        routes = self._routes.get(host)
        if routes is None:
            return Response.local(404, f"no route to {host!r}\n", "NR")
        choice = select_route(routes, request.method, request.path, request.headers, self._rng)
        if choice is None:
            return Response.local(404, f"no route matches {request.method} {request.path}\n", "NR")
        if choice.mirror is not None:
            self._mirror(request, choice.mirror)
        return await self.inner(request.replace(destination=host, subset=choice.subset))

    def _mirror(self, request: Request, mirror: Mirror) -> None:
        target, spawn = self._mirror_to, self._spawn
        if target is None or spawn is None:
            return
        shadow = request.with_header("host", f"{mirror.host}-shadow").replace(
            destination=mirror.host, subset=mirror.subset, trace=None
        )

        async def send() -> None:
            await target(shadow)  # the answer is ignored; failures are answers already

        spawn(send)
