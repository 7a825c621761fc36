"""The peer-identity layer: tell the local app who called, in ``x-forwarded-client-cert``.

hypercorn (like most app servers behind a sidecar) sees no TLS, so the sidecar terminates
mTLS and passes the verified caller on in Envoy's format::

    By=spiffe://cluster.local/ns/default/sa/payments;Hash=<sha256 of the client cert>;
    Subject="";URI=spiffe://cluster.local/ns/default/sa/checkout

(one line). Whatever ``x-forwarded-client-cert`` the caller sent is dropped first (Envoy's
``SANITIZE_SET``), so a plain-text caller cannot claim an identity it does not have.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from meshcore.layers.base import Service
from meshcore.model import Request, Response

__all__ = ["XFCC_HEADER", "PeerIdentityLayer"]

XFCC_HEADER = "x-forwarded-client-cert"


class PeerIdentityLayer:
    """Sets ``x-forwarded-client-cert`` from the connection's verified peer.

    ``own_spiffe`` returns this workload's SPIFFE ID (the ``By`` element).
    """

    def __init__(self, inner: Service, own_spiffe: Callable[[], str]) -> None:
        self.inner = inner
        self._own_spiffe = own_spiffe

    async def __call__(self, request: Request) -> Response:
        """Replace any ``x-forwarded-client-cert`` with the verified peer's."""
        headers = tuple((name, value) for name, value in request.headers if name != XFCC_HEADER)
        peer = request.peer
        if peer is not None:
            value = (
                f'By={self._own_spiffe()};Hash={peer.cert_sha256};Subject="";URI={peer.spiffe_id}'
            )
            headers = (*headers, (XFCC_HEADER, value))
        return await self.inner(dataclasses.replace(request, headers=headers))
