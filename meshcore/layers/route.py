"""The outbound route layer: which destination service does a request go to?

The local app names the destination in the ``Host`` header (``payments`` or
``payments:8080``), as a plain-HTTP client does through an Istio sidecar. A host the sidecar
has no destination for is answered 404 with Envoy's flag ``NR`` (no route).
"""

from __future__ import annotations

from collections.abc import Collection

from meshcore.layers.base import Service
from meshcore.model import Request, Response

__all__ = ["RouteLayer"]


class RouteLayer:
    """Sets ``request.destination`` from the Host header, or answers 404 ``NR``."""

    def __init__(self, inner: Service, destinations: Collection[str]) -> None:
        self.inner = inner
        self._destinations = frozenset(destinations)

    async def __call__(self, request: Request) -> Response:
        """Route ``request`` to its destination service."""
        host = request.host
        if host not in self._destinations:
            return Response.local(404, f"no route to {host!r}\n", "NR")
        return await self.inner(request.replace(destination=host))
