"""One-off HTTP requests over a :class:`~meshcore.transport.network.Network`.

For control-plane traffic (admin calls, readiness probes), where a fresh connection per
request is simpler than a pool and costs nothing that matters.
"""

from __future__ import annotations

from meshcore.model import Endpoint, Request, Response
from meshcore.transport.http1 import ClientConnection
from meshcore.transport.network import Network

__all__ = ["request_once"]


async def request_once(network: Network, endpoint: Endpoint, request: Request) -> Response:
    """Open a connection to ``endpoint``, exchange ``request``, close; raise UpstreamError."""
    conn = ClientConnection(await network.connect(endpoint))
    try:
        return await conn.round_trip(request, host=str(endpoint))
    finally:
        await conn.aclose()
