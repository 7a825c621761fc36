"""The HTTP/1.1 codec interface, and what both codecs share: limits, framing rules.

Two codecs implement it:

- :mod:`meshcore.transport.http1` with h11, the pure-Python reference: the control-plane
  client (:mod:`meshcore.transport.client`) and the tests' peers use it;
- :mod:`meshcore.transport.llhttp` with llhttp (Node.js's C parser, through httptools), on the
  hot paths (the sidecar's listeners and upstream pools, the simulated apps, the load
  generator): parsing there costs a few microseconds where h11 costs about a hundred per
  message.

Each offers a server loop with the signature of :data:`ServeHttp` and a client connection with
the shape of :class:`HttpConnection`; the transport tests run against both, so the two behave
the same (docs/sidecar.md lists the few cases where llhttp is stricter).

Bodies are read whole (the mesh proxies small API calls, not streams), and framing is redone
on every hop: hop-by-hop headers are dropped and ``content-length`` is set from the body, so
a message never depends on how the previous hop framed it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from meshcore.model import Headers, Request, Response

__all__ = [
    "HEADER_READ_TIMEOUT_S",
    "HOP_BY_HOP",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "Handler",
    "HttpConnection",
    "ServeHttp",
    "end_to_end",
]

MAX_HEADER_BYTES = 60 * 1024  # Envoy's default max_request_headers_kb
MAX_HEADERS = 100  # Envoy's default max_headers_count
# From a request's first byte to the end of its headers. Envoy leaves request_headers_timeout
# off by default; a proxy in front of every replica cannot afford to, so meshchaos sets one.
HEADER_READ_TIMEOUT_S = 10.0
# Headers that describe one hop's connection or framing; never forwarded (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)

Handler = Callable[[Request], Awaitable[Response]]
# Serve HTTP/1.1 requests on a stream with a handler until either side closes.
ServeHttp = Callable[[trio.abc.Stream, Handler], Awaitable[None]]


class HttpConnection(Protocol):
    """The client side of one HTTP/1.1 connection; one request at a time (no pipelining)."""

    stream: trio.abc.Stream

    @property
    def reusable(self) -> bool:
        """Tell whether another request may be sent on this connection."""

    async def round_trip(self, request: Request, host: str) -> Response:
        """Send ``request`` (with ``Host: host`` when it has none) and return the response.

        Raises :class:`~meshcore.errors.UpstreamReset` when the connection breaks, the peer
        closes it before a complete response, or the response is malformed.
        """

    async def aclose(self) -> None:
        """Close the connection."""


def end_to_end(headers: Headers, length: int) -> list[tuple[bytes, bytes]]:
    """Return ``headers`` without the hop-by-hop ones, plus ``content-length: length``.

    Values were decoded as Latin-1 on the way in and are encoded back the same way, so any
    byte a peer legally sent round-trips.
    """
    kept = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in headers
        if name not in HOP_BY_HOP
    ]
    kept.append((b"content-length", str(length).encode("ascii")))
    return kept
