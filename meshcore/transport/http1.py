"""HTTP/1.1 over a trio stream, with h11 as the parser.

This is the only module that knows h11. It offers two small things:

- :func:`serve_http`: the server side of one connection, a keep-alive loop that reads a
  :class:`~meshcore.model.Request`, awaits a handler and writes its
  :class:`~meshcore.model.Response`;
- :class:`ClientConnection`: the client side of one connection, ``round_trip(request)``.

Bodies are read whole (the mesh proxies small API calls, not streams), and framing is redone
on every hop: hop-by-hop headers are dropped and ``content-length`` is set from the body, so
a response never depends on how the previous hop framed it. A request with both
``content-length`` and ``transfer-encoding`` is refused with 400 and a header block over
60 KiB with 431, as Envoy does. Errors from the socket or the parser become
:mod:`meshcore.errors` exceptions here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import h11
import trio

from meshcore.errors import ProtocolError, UpstreamReset
from meshcore.model import Headers, Request, Response

__all__ = ["MAX_HEADER_BYTES", "ClientConnection", "Handler", "serve_http"]

MAX_HEADER_BYTES = 60 * 1024  # Envoy's default max_request_headers_kb
_READ_SIZE = 65536
# Headers that describe one hop's connection or framing; never forwarded (RFC 9110 7.6.1).
_HOP_BY_HOP = frozenset(
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


def _decode_headers(raw: h11._headers.Headers) -> Headers:
    # Iterating h11's Headers yields lower-cased names.
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)


def _end_to_end(headers: Headers, body: bytes) -> list[tuple[str, str]]:
    kept = [(name, value) for name, value in headers if name not in _HOP_BY_HOP]
    kept.append(("content-length", str(len(body))))
    return kept


async def _next_event(conn: h11.Connection, stream: trio.abc.Stream) -> object:
    """Return the next h11 event, reading from ``stream`` as needed."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = await stream.receive_some(_READ_SIZE)
        conn.receive_data(bytes(data))  # b"" tells h11 the peer closed


async def _read_body(conn: h11.Connection, stream: trio.abc.Stream) -> bytes:
    chunks: list[bytes] = []
    while True:
        event = await _next_event(conn, stream)
        if isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        else:
            raise ProtocolError(f"unexpected {type(event).__name__} in a message body")


async def _read_request(conn: h11.Connection, stream: trio.abc.Stream) -> Request | None:
    """Read one request; ``None`` when the client closed the connection between requests."""
    try:
        event = await _next_event(conn, stream)
        if isinstance(event, h11.ConnectionClosed):
            return None
        if not isinstance(event, h11.Request):
            raise ProtocolError(f"expected a request, got {type(event).__name__}")
        headers = _decode_headers(event.headers)
        names = {name for name, _ in headers}
        if "content-length" in names and "transfer-encoding" in names:
            raise ProtocolError("both Content-Length and Transfer-Encoding are set")
        body = await _read_body(conn, stream)
    except h11.RemoteProtocolError as error:
        raise ProtocolError(str(error), error.error_status_hint) from error
    return Request(
        method=event.method.decode("ascii"),
        target=event.target.decode("latin-1"),
        headers=headers,
        body=body,
    )


async def _send_response(conn: h11.Connection, stream: trio.abc.Stream, response: Response) -> None:
    headers = _end_to_end(response.headers, response.body)
    data = conn.send(h11.Response(status_code=response.status, headers=headers))
    data += conn.send(h11.Data(data=response.body)) if response.body else b""
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)


async def serve_http(stream: trio.abc.Stream, handler: Handler) -> None:
    """Serve HTTP/1.1 requests on ``stream`` with ``handler`` until either side closes."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    async with stream:
        try:
            while True:
                try:
                    request = await _read_request(conn, stream)
                except ProtocolError as error:
                    if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                        reply = Response.local(error.status, f"bad request: {error}\n")
                        await _send_response(conn, stream, reply)
                    return
                if request is None:
                    return
                response = await handler(request)
                await _send_response(conn, stream, response)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return  # h11 decided the connection cannot be reused
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the client went away; nothing is left to answer


class ClientConnection:
    """One HTTP/1.1 client connection; requests are sent one after another (no pipelining)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)

    @property
    def reusable(self) -> bool:
        """Tell whether another request may be sent on this connection."""
        return self._conn.our_state is h11.IDLE and self._conn.their_state is h11.IDLE

    async def round_trip(self, request: Request, host: str) -> Response:
        """Send ``request`` with ``Host: host`` and return the response.

        Raises :class:`UpstreamReset` when the connection breaks or the peer closes it before
        a complete response, and :class:`ProtocolError` on a malformed response.
        """
        headers = _end_to_end(request.headers, request.body)
        if request.header("host") is None:
            headers.insert(0, ("host", host))
        try:
            data = self._conn.send(
                h11.Request(method=request.method, target=request.target, headers=headers)
            )
            if request.body:
                data += self._conn.send(h11.Data(data=request.body))
            data += self._conn.send(h11.EndOfMessage())
            await self.stream.send_all(data)
            event = await _next_event(self._conn, self.stream)
            while isinstance(event, h11.InformationalResponse):
                event = await _next_event(self._conn, self.stream)
            if not isinstance(event, h11.Response):
                raise UpstreamReset(f"connection closed before a response ({event!r})")
            body = await _read_body(self._conn, self.stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            raise UpstreamReset(f"connection broken: {error}") from error
        except h11.RemoteProtocolError as error:
            raise UpstreamReset(f"upstream closed or sent broken HTTP: {error}") from error
        except ProtocolError as error:
            raise UpstreamReset(str(error)) from error
        if self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE:
            self._conn.start_next_cycle()
        return Response(
            status=event.status_code,
            headers=_decode_headers(event.headers),
            body=body,
        )

    async def aclose(self) -> None:
        """Close the connection."""
        await self.stream.aclose()
