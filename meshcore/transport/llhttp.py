"""HTTP/1.1 over a trio stream with llhttp (Node.js's parser, via httptools): the fast codec.

It implements the codec interface of :mod:`meshcore.transport.codec` for the hot paths, where
the benchmarks show h11's pure-Python state machine is the cost: llhttp parses a message in
about a microsecond where h11 takes about a hundred. The sidecar's listeners and upstream pools
and the load generator use it.

- :func:`serve_http`: the server loop, with the same behaviour and hardening as the h11 one
  (:mod:`meshcore.transport.http1`; the transport and hostile-client tests run against both):
  ``content-length`` with ``transfer-encoding``, conflicting ``content-length`` values or
  obs-fold answer 400; a transfer coding other than ``chunked`` 501; more than
  :data:`~meshcore.transport.codec.MAX_HEADERS` headers or a header block over
  :data:`~meshcore.transport.codec.MAX_HEADER_BYTES` 431; a header block not complete
  :data:`~meshcore.transport.codec.HEADER_READ_TIMEOUT_S` after its first byte 408. The
  connection closes after such an answer, so nothing that follows reaches the app.
- :class:`LlhttpClientConnection`: the client side, ``round_trip(request)``.

Messages are written by hand: a status or request line, the end-to-end headers and
``content-length``. A header that would smuggle a line break is refused.

Where llhttp is stricter than h11 (docs/sidecar.md): a method llhttp does not know, a repeated
``content-length`` even with equal values, and a line ended by a bare LF (RFC 9112 2.2 allows
either) are 400; so is a request whose version is not 1.0 or 1.1 (505). A request that asks for a
protocol upgrade (``Upgrade``, ``CONNECT``) is served as a plain request, then the connection
closes; one that also announces a body is 400, since llhttp would not read that body.
"""

from __future__ import annotations

from collections import deque
from http import HTTPStatus

import httptools
import trio

from meshcore.errors import ProtocolError, UpstreamReset
from meshcore.model import PeerIdentity, Request, Response
from meshcore.transport.codec import (
    HEADER_READ_TIMEOUT_S,
    HOP_BY_HOP,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    Handler,
)

__all__ = ["LlhttpClientConnection", "encode_request", "encode_response", "serve_http"]

_READ_SIZE = 65536
_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
# llhttp's reason for a line that starts with whitespace inside a header block.
_OBS_FOLD_REASON = "Unexpected whitespace after header value"


def _encode_head(first_line: str, headers: list[str]) -> bytes:
    head = "\r\n".join((first_line, *headers))
    # Every CR and LF must be one of the separators just added: a value carrying its own
    # would end the header early and smuggle the rest.
    lines = len(headers)
    if head.count("\r") != lines or head.count("\n") != lines:
        raise ValueError("a start line or header contains a line break")
    return head.encode("latin-1") + b"\r\n\r\n"


def encode_request(request: Request, host: str) -> bytes:
    """Return ``request`` as HTTP/1.1 bytes with ``Host`` (when absent) and Content-Length.

    Raises :class:`ValueError` when the request line or a header contains a line break.
    """
    headers = [f"{name}: {value}" for name, value in request.headers if name not in HOP_BY_HOP]
    if request.header("host") is None:
        headers.insert(0, f"host: {host}")
    headers.append(f"content-length: {len(request.body)}")
    head = _encode_head(f"{request.method} {request.target} HTTP/1.1", headers)
    return head + request.body


def encode_response(response: Response, *, head: bool = False) -> bytes:
    """Return ``response`` as HTTP/1.1 bytes; ``head``: it answers a HEAD request.

    A 1xx, 204 or 304 response has no body and (but for 304) no length. An answer to HEAD
    announces the length the upstream gave, if any, and carries no body. Raises
    :class:`ValueError` when a header contains a line break.
    """
    status, body = response.status, response.body
    headers = [f"{name}: {value}" for name, value in response.headers if name not in HOP_BY_HOP]
    no_body = status < 200 or status in (204, 304) or head
    length: object = len(body)
    if no_body:
        # The length of the body a GET would have had: as the upstream said, or unknown.
        length = response.header("content-length") or (len(body) if head and body else None)
    if length is not None and status >= 200 and status != 204:
        headers.append(f"content-length: {length}")
    reason = _REASONS.get(status, b"").decode("ascii")
    data = _encode_head(f"HTTP/1.1 {status} {reason}", headers)
    return data if no_body else data + body


class _RequestReader:
    """httptools' callbacks for the requests of one connection, queued as they complete.

    Theory of operation: llhttp parses whatever bytes it is fed, so one chunk can hold the end
    of a request, whole pipelined requests and the start of the next. Each complete request
    goes to ``ready`` with whether the connection may carry another; a parse error or a
    refused header block goes there too, as a :class:`ProtocolError` after the requests that
    precede it, and nothing more is parsed. The server loop pops and answers them in order.
    ``in_head`` is true from a request's first byte to the end of its header block, the span
    the header-read timeout and the header size limit apply to; ``in_message`` until the
    request is complete.
    """

    __slots__ = (
        "_body",
        "_framed",
        "_headers",
        "_hosts",
        "_keep_alive",
        "_url",
        "broken",
        "head_bytes",
        "in_head",
        "in_message",
        "parser",
        "peer",
        "ready",
    )

    def __init__(self, peer: PeerIdentity | None) -> None:
        self.peer = peer  # the connection's verified mTLS peer, on every request it carries
        self.parser = httptools.HttpRequestParser(self)
        self.ready: deque[tuple[Request, bool] | ProtocolError] = deque()
        self.broken = False
        self.in_head = False
        self.in_message = False
        self.head_bytes = 0
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._hosts = 0
        self._framed = False
        self._keep_alive = False

    def feed(self, data: bytes | bytearray) -> None:
        """Parse ``data`` (not empty), queueing what it completes."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgrade()
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            self._fail(cause if isinstance(cause, ProtocolError) else ProtocolError(str(error)))
        except httptools.HttpParserError as error:
            reason = str(error)
            if reason == _OBS_FOLD_REASON:
                reason = "a header is folded over several lines (obs-fold)"
            self._fail(ProtocolError(reason))
        else:
            if self.in_head:
                # Counted from the chunk the request began in, all of it: at worst that chunk
                # also held the end of a pipelined request before, and the limit comes early.
                self.head_bytes += len(data)
                if self.head_bytes > MAX_HEADER_BYTES:
                    self._fail(ProtocolError("the header block is too large", 431))

    def _upgrade(self) -> None:
        # llhttp ends a request that asks to switch protocols at its headers, and stops: it
        # is served as a plain request, then the connection closes. Its body, if it announced
        # one, was not read: it is refused rather than passed on empty.
        if self._framed:
            self.ready.pop()
            self._fail(ProtocolError("a protocol upgrade request cannot carry a body here"))
        else:
            self.broken = True

    def _fail(self, error: ProtocolError) -> None:
        self.ready.append(error)
        self.broken = True

    def on_message_begin(self) -> None:
        self.in_head = self.in_message = True
        self.head_bytes = 0
        self._url = b""
        self._headers = []
        self._body = []
        self._hosts = 0
        self._framed = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self._headers) >= MAX_HEADERS:
            raise ProtocolError(f"more than {MAX_HEADERS} headers", 431)
        key = name.decode("latin-1").lower()
        if key == "host":
            self._hosts += 1
        elif key == "transfer-encoding":
            if value.strip(b" \t").lower() != b"chunked":
                # h11 implements chunked alone, and answers any other coding 501 (RFC 9112 6.1).
                raise ProtocolError("only Transfer-Encoding: chunked is supported", 501)
            self._framed = True
        elif key == "content-length":
            self._framed = self._framed or value.strip(b" \t") != b"0"
        # llhttp strips the whitespace before a value, not the whitespace after it.
        self._headers.append((key, value.rstrip(b" \t").decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise ProtocolError(f"HTTP/{version} is not supported", 505)
        if self._hosts > 1 or (self._hosts == 0 and version == "1.1"):
            raise ProtocolError("a request needs exactly one Host header")
        # HTTP/1.0 keep-alive is an old extension h11 does not honour; neither does this.
        self._keep_alive = version == "1.1" and parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        request = Request(
            method=self.parser.get_method().decode("ascii"),
            target=self._url.decode("latin-1"),
            headers=tuple(self._headers),
            body=b"".join(self._body),
            peer=self.peer,
        )
        self.ready.append((request, self._keep_alive))


async def _next_request(
    reader: _RequestReader, stream: trio.abc.Stream
) -> tuple[Request, bool] | ProtocolError | None:
    """Return the next request (with keep-alive) or error; ``None`` if the client closed."""
    deadline: float | None = None
    while not reader.ready:
        if reader.in_head:
            # Timed from the first byte of the header block (or, for one already begun in a
            # pipelined chunk, from when this loop turns to it), as the h11 codec does.
            if deadline is None:
                deadline = trio.current_time() + HEADER_READ_TIMEOUT_S
            data: bytes | bytearray = b""
            with trio.move_on_at(deadline):
                data = await stream.receive_some(_READ_SIZE)
                if not data:
                    return ProtocolError("the client closed the connection mid-request")
            if not data:
                return ProtocolError("request headers not complete in time", 408)
        else:
            # Between requests (untimed: an idle keep-alive connection), or reading a body.
            data = await stream.receive_some(_READ_SIZE)
            if not data:
                if reader.in_message:
                    return ProtocolError("the client closed the connection mid-request")
                return None
        reader.feed(data)
    return reader.ready.popleft()


async def serve_http(
    stream: trio.abc.Stream, handler: Handler, *, peer: PeerIdentity | None = None
) -> None:
    """Serve HTTP/1.1 requests on ``stream`` with ``handler`` until either side closes.

    ``peer``: the verified mTLS identity of the connection, set as every request's ``peer``.
    """
    reader = _RequestReader(peer)
    async with stream:
        try:
            while True:
                item = await _next_request(reader, stream)
                if item is None:
                    return
                if isinstance(item, ProtocolError):
                    reply = Response.local(item.status, f"bad request: {item}\n")
                    await stream.send_all(encode_response(reply))
                    return
                request, keep_alive = item
                response = await handler(request)
                try:
                    data = encode_response(response, head=request.method == "HEAD")
                except ValueError as error:
                    data = encode_response(Response.local(502, f"invalid response: {error}\n"))
                    keep_alive = False
                await stream.send_all(data)
                if not keep_alive or (reader.broken and not reader.ready):
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the client went away; nothing is left to answer


class _Exchange:
    """httptools' callbacks for the responses of one connection, one exchange at a time.

    :meth:`start` resets it for the next request's response (after any 1xx ones, which are
    skipped). The connection keeps one exchange and one parser for its life; ``parser`` is
    set only while an exchange runs, so the two never form a reference cycle between requests
    (a cycle would leave garbage for the cycle collector).
    """

    __slots__ = (
        "body",
        "by_close",
        "complete",
        "head_only",
        "headers",
        "headers_done",
        "keep_alive",
        "parser",
        "status",
        "trailing",
    )

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.start(head_only=False)

    def start(self, *, head_only: bool) -> None:
        """Get ready for the response to a new request (``head_only``: a HEAD's)."""
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.complete = False
        self.headers_done = False
        self.head_only = head_only
        self.keep_alive = False
        self.by_close = True  # no length and not chunked: the body ends when the peer closes
        self.status = 0
        self.trailing = False  # bytes arrived after the response: the connection is unusable

    def on_message_begin(self) -> None:
        if self.complete:
            self.trailing = True
        self.headers = []
        self.by_close = True

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        if key == "content-length" or key == "transfer-encoding":
            self.by_close = False
        self.headers.append((key, value.rstrip(b" \t").decode("latin-1")))

    def on_headers_complete(self) -> None:
        parser = self.parser
        assert parser is not None  # set for as long as the parser is fed
        self.status = parser.get_status_code()
        # llhttp answers this only while the message is current, not after it completes.
        self.keep_alive = parser.should_keep_alive()
        self.headers_done = self.status >= 200
        if self.head_only and self.status >= 200:
            self.complete = True  # a response to HEAD has no body, whatever it announces

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.status >= 200:  # an informational response is followed by the real one
            self.complete = True


class LlhttpClientConnection:
    """One HTTP/1.1 client connection parsed by llhttp; one request at a time."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._reusable = True
        self._exchange = _Exchange()
        self._parser: httptools.HttpResponseParser | None = None  # made by the first exchange

    @property
    def reusable(self) -> bool:
        """Tell whether another request may be sent on this connection."""
        return self._reusable

    async def round_trip(self, request: Request, host: str) -> Response:
        """Send ``request`` and return the response; raise UpstreamReset if the exchange breaks."""
        data = encode_request(request, host)
        return await self.round_trip_encoded(data, head_only=request.method == "HEAD")

    async def round_trip_encoded(self, data: bytes, *, head_only: bool) -> Response:
        """Send a request already encoded by :func:`encode_request`; return the response.

        For a caller that sends the same request many times (the load generator encodes each
        request of its mix once). ``head_only``: the request is a HEAD (no response body).
        """
        self._reusable = False  # until a complete keep-alive response says otherwise
        exchange = self._exchange
        exchange.start(head_only=head_only)
        # The parser of the last exchange, if it ended clean; given back below if this one does.
        parser = self._parser or httptools.HttpResponseParser(exchange)
        self._parser = None
        exchange.parser = parser
        try:
            await self.stream.send_all(data)
            while not exchange.complete:
                chunk = await self.stream.receive_some(_READ_SIZE)
                if not chunk:
                    if exchange.headers_done and exchange.by_close:
                        break  # the close ends a body without a length: complete, not reusable
                    raise UpstreamReset("connection closed before a complete response")
                parser.feed_data(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            raise UpstreamReset(f"connection broken: {error}") from error
        except httptools.HttpParserUpgrade as error:
            raise UpstreamReset("upstream switched protocols") from error
        except httptools.HttpParserError as error:
            raise UpstreamReset(f"upstream sent broken HTTP: {error}") from error
        finally:
            # The parser holds the exchange's callbacks and the exchange the parser: a cycle
            # that refcounting cannot free, so without this every connection left garbage for
            # the cycle collector (its passes stalled the load generator).
            exchange.parser = None
        self._reusable = exchange.complete and exchange.keep_alive and not exchange.trailing
        if self._reusable and not head_only:
            # After a HEAD, llhttp still expects the body the response announced (httptools
            # cannot tell it to skip it): the next response gets a fresh parser.
            self._parser = parser
        return Response(
            status=exchange.status, headers=tuple(exchange.headers), body=b"".join(exchange.body)
        )

    async def aclose(self) -> None:
        """Close the connection."""
        await self.stream.aclose()
