"""The innermost layer: send the request over a pooled connection and translate failures.

Failures below HTTP become the answers Envoy gives: a connection that cannot be made is 503
with flag ``UF``; one that breaks before a complete response is 503 with flag ``UC``. Both
carry Envoy's body text, so a user who greps for it finds it.
"""

from __future__ import annotations

from meshcore.errors import ConnectFailure, TlsFailure, UpstreamReset
from meshcore.model import Endpoint, Request, Response
from meshcore.transport.pool import UpstreamPool

__all__ = ["UpstreamLayer"]


class UpstreamLayer:
    """Sends each request to ``request.endpoint`` (or ``fixed``, for the local app)."""

    def __init__(self, pool: UpstreamPool, fixed: Endpoint | None = None) -> None:
        self._pool = pool
        self._fixed = fixed

    async def __call__(self, request: Request) -> Response:
        """Exchange ``request`` with its upstream."""
        endpoint = self._fixed or request.endpoint
        if endpoint is None:
            raise ValueError("UpstreamLayer needs request.endpoint or a fixed endpoint")
        try:
            return await self._pool.round_trip(endpoint, request)
        except TlsFailure as error:
            # Envoy's wording; the reason goes to the access log's response_code_details.
            response = Response.local(
                503,
                "upstream connect error or disconnect/reset before headers. "
                "reset reason: connection failure, transport failure reason: TLS error\n",
                "UF",
            ).replace(details=f"upstream_reset_before_response_started{{TLS_error:{error}}}")
        except ConnectFailure:
            response = Response.local(
                503,
                "upstream connect error or disconnect/reset before headers. "
                "reset reason: connection failure\n",
                "UF",
            )
        except UpstreamReset:
            response = Response.local(
                503,
                "upstream connect error or disconnect/reset before headers. "
                "reset reason: connection termination\n",
                "UC",
            )
        return response.replace(upstream=str(endpoint))
