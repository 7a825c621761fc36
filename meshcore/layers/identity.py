"""The peer-identity layer: tell the local app who called, in ``x-forwarded-client-cert``.

hypercorn (like most app servers behind a sidecar) sees no TLS, so the sidecar terminates
mTLS and passes the verified caller on in Envoy's format::

    By=spiffe://cluster.local/ns/default/sa/payments;Hash=<sha256 of the client cert>;
    Subject="";URI=spiffe://cluster.local/ns/default/sa/checkout

(one line). Whatever ``x-forwarded-client-cert`` the caller sent is dropped first (Envoy's
``SANITIZE_SET``), so a plain-text caller cannot claim an identity it does not have.
"""

from __future__ import annotations

from collections.abc import Callable

from meshcore.layers.base import Service
from meshcore.model import PeerIdentity, Request, Response

__all__ = ["XFCC_HEADER", "PeerIdentityLayer"]

XFCC_HEADER = "x-forwarded-client-cert"


class PeerIdentityLayer:
    """Sets ``x-forwarded-client-cert`` from the connection's verified peer.

    ``own_spiffe`` returns this workload's SPIFFE ID (the ``By`` element).
    """

    def __init__(self, inner: Service, own_spiffe: Callable[[], str]) -> None:
        self.inner = inner
        self._own_spiffe = own_spiffe
        # The header of the last peer seen: every request of a connection has the same peer.
        self._last: tuple[PeerIdentity | None, str, tuple[str, str] | None] = (None, "", None)

    async def __call__(self, request: Request) -> Response:
        """Replace any ``x-forwarded-client-cert`` with the verified peer's."""
        peer = request.peer
        headers = request.headers
        forged = any(name == XFCC_HEADER for name, _ in headers)
        if peer is None and not forged:
            return await self.inner(request)  # nothing to drop, nothing to add: no copy
        if forged:
            headers = tuple((name, value) for name, value in headers if name != XFCC_HEADER)
        if peer is not None:
            headers = (*headers, self._header(peer))
        return await self.inner(request.replace(headers=headers))

    def _header(self, peer: PeerIdentity) -> tuple[str, str]:
        own = self._own_spiffe()
        last_peer, last_own, header = self._last
        if header is None or last_peer is not peer or last_own != own:
            value = f'By={own};Hash={peer.cert_sha256};Subject="";URI={peer.spiffe_id}'
            header = (XFCC_HEADER, value)
            self._last = (peer, own, header)
        return header
