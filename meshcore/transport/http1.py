"""HTTP/1.1 over a trio stream, with h11 as the parser: the reference codec.

This is the only module that knows h11. It implements the codec interface of
:mod:`meshcore.transport.codec`:

- :func:`serve_http`: the server side of one connection, a keep-alive loop that reads a
  :class:`~meshcore.model.Request`, awaits a handler and writes its
  :class:`~meshcore.model.Response`;
- :class:`ClientConnection`: the client side of one connection, ``round_trip(request)``.

h11 is pure Python and easy to read, and checks every rule of RFC 9112, which makes it the
reference the llhttp codec (the sidecar's) is tested against; the control-plane client
(:mod:`meshcore.transport.client`) uses it too.

The server refuses what could be read two ways (request smuggling) or hold it hostage, and
closes the connection after answering, so nothing that follows reaches the app:

- ``content-length`` together with ``transfer-encoding``, conflicting ``content-length``
  values, or a header folded over several lines (obs-fold): 400;
- a header block over 60 KiB (Envoy's ``max_request_headers_kb``) or with more than 100
  headers (Envoy's ``max_headers_count``): 431;
- a header block not complete :data:`~meshcore.transport.codec.HEADER_READ_TIMEOUT_S` after its
  first byte (slowloris): 408. An idle keep-alive connection between requests is not timed.

Errors from the socket or the parser become :mod:`meshcore.errors` exceptions here and nowhere
else.
"""

from __future__ import annotations

import re

import h11
import trio

from meshcore.errors import ProtocolError, UpstreamReset
from meshcore.model import Headers, Request, Response
from meshcore.transport.codec import (
    HEADER_READ_TIMEOUT_S,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    Handler,
    end_to_end,
)

__all__ = ["ClientConnection", "serve_http"]

# A line of the header block that starts with a space or tab continues the previous one.
_OBS_FOLD = re.compile(rb"\n[ \t]")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_READ_SIZE = 65536


def _decode_headers(raw: h11._headers.Headers) -> Headers:
    # Iterating h11's Headers yields lower-cased names.
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)


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


async def _wait_for_request(conn: h11.Connection, stream: trio.abc.Stream) -> bool:
    """Wait, untimed, for the first byte of the next request; ``False`` if the client closed."""
    buffered, closed = conn.trailing_data
    if buffered or closed:
        return bool(buffered)
    data = await stream.receive_some(_READ_SIZE)
    conn.receive_data(bytes(data))
    return bool(data)


async def _read_head(conn: h11.Connection, stream: trio.abc.Stream) -> h11.Request:
    """Read a request's header block and check what h11 lets through (obs-fold, count).

    h11 unfolds obs-fold silently, so the raw bytes of the head are kept to look for it.
    """
    raw = bytearray(conn.trailing_data[0])
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            break
        data = await stream.receive_some(_READ_SIZE)
        raw += data
        conn.receive_data(bytes(data))
    if not isinstance(event, h11.Request):
        raise ProtocolError(f"expected a request, got {type(event).__name__}")
    end = _HEAD_END.search(raw)
    if _OBS_FOLD.search(raw, 0, end.start() if end else len(raw)):
        raise ProtocolError("a header is folded over several lines (obs-fold)")
    if len(event.headers) > MAX_HEADERS:
        raise ProtocolError(f"more than {MAX_HEADERS} headers", 431)
    names = {name for name, _ in event.headers}
    if b"content-length" in names and b"transfer-encoding" in names:
        raise ProtocolError("both Content-Length and Transfer-Encoding are set")
    return event


async def _read_request(conn: h11.Connection, stream: trio.abc.Stream) -> Request | None:
    """Read one request; ``None`` when the client closed the connection between requests."""
    try:
        if not await _wait_for_request(conn, stream):
            return None
        event = None
        with trio.move_on_after(HEADER_READ_TIMEOUT_S):
            event = await _read_head(conn, stream)
        if event is None:
            raise ProtocolError("request headers not complete in time", 408)
        body = await _read_body(conn, stream)
    except h11.RemoteProtocolError as error:
        raise ProtocolError(str(error), error.error_status_hint) from error
    return Request(
        method=event.method.decode("ascii"),
        target=event.target.decode("latin-1"),
        headers=_decode_headers(event.headers),
        body=body,
    )


async def _send_response(conn: h11.Connection, stream: trio.abc.Stream, response: Response) -> None:
    headers = end_to_end(response.headers, len(response.body))
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
        conn = self._conn
        # After a body that ended with the connection (no length), h11 still says IDLE.
        return (
            conn.our_state is h11.IDLE
            and conn.their_state is h11.IDLE
            and not conn.trailing_data[1]
        )

    async def round_trip(self, request: Request, host: str) -> Response:
        """Send ``request`` with ``Host: host`` and return the response.

        Raises :class:`UpstreamReset` when the connection breaks or the peer closes it before
        a complete response, and :class:`ProtocolError` on a malformed response.
        """
        headers = end_to_end(request.headers, len(request.body))
        if request.header("host") is None:
            headers.insert(0, (b"host", host.encode("latin-1")))
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
