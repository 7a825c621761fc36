"""A small ASGI server on meshcore's HTTP/1.1 transport, for apps served in simulate mode.

Real mode serves each synthetic service with hypercorn, one process per replica (DESIGN.md 1).
Simulate mode runs every replica in one Trio run on the in-memory network, and serves the same
ASGI app with :func:`serve_asgi` instead, over the sidecars' own HTTP/1.1 server
(:func:`meshcore.transport.llhttp.serve_http`): keep-alive, whole bodies, the same framing.
Hypercorn could be driven over a memory stream too (its ``TCPServer`` takes any stream), but
that needs a fake socket and its internal worker classes, and it costs several times the CPU
per request of this adapter (docs/ARCHITECTURE.md), which bounds simulate mode's speed.

The app gets the ASGI 3 ``lifespan`` protocol (startup before the first connection is
served), then one ``http`` scope per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import trio

from meshcore.model import Endpoint, Request, Response
from meshcore.transport.codec import Handler
from meshcore.transport.llhttp import serve_http
from meshcore.transport.network import Network

__all__ = ["AsgiApp", "AsgiError", "asgi_handler", "serve_asgi"]

Message = MutableMapping[str, Any]
AsgiApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

_ASGI = {"version": "3.0", "spec_version": "2.3"}


class AsgiError(Exception):
    """The app broke the ASGI protocol (no response, or a failed startup)."""


def asgi_handler(
    app: AsgiApp, server: Endpoint, on_error: Callable[[Exception], None] | None = None
) -> Handler:
    """Return a :data:`~meshcore.transport.codec.Handler` that runs ``app`` per request.

    An app that raises, or answers nothing, gets a 500 for that request, as hypercorn gives;
    ``on_error`` hears why (a log).
    """

    async def handle(request: Request) -> Response:
        path, _, query = request.target.partition("?")
        scope: Message = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": "1.1",
            "method": request.method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers],
            "client": None,
            "server": (server.host, server.port),
        }
        body_sent = False
        status: int | None = None
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": request.body, "more_body": False}
            await trio.sleep_forever()  # http.disconnect: the client never leaves mid-request
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers.extend(
                    (k.decode("latin-1").lower(), v.decode("latin-1"))
                    for k, v in message.get("headers", ())
                )
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        try:
            await app(scope, receive, send)
            if status is None:
                raise AsgiError(f"the app answered {request.method} {request.target} with nothing")
        except Exception as error:
            if on_error is not None:
                on_error(error)
            return Response.local(500, "internal server error\n")
        return Response(status, tuple(headers), b"".join(chunks))

    return handle


async def serve_asgi(
    app: AsgiApp,
    network: Network,
    endpoint: Endpoint,
    *,
    on_error: Callable[[Exception], None] | None = None,
    task_status: trio.TaskStatus[Endpoint] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``app``'s lifespan startup, then serve it on ``endpoint`` until cancelled.

    ``on_error`` hears of every request the app failed (see :func:`asgi_handler`).
    """
    async with trio.open_nursery() as nursery:
        to_app, app_inbox = trio.open_memory_channel[Message](1)
        from_app, app_outbox = trio.open_memory_channel[Message](1)

        async def send(message: Message) -> None:
            await from_app.send(message)

        # The lifespan task lives as long as the server: apps keep their resources there.
        scope: Message = {"type": "lifespan", "asgi": _ASGI, "state": {}}
        nursery.start_soon(app, scope, app_inbox.receive, send)
        await to_app.send({"type": "lifespan.startup"})
        answer = await app_outbox.receive()
        if answer["type"] != "lifespan.startup.complete":
            raise AsgiError(f"the app's startup failed: {answer.get('message', answer['type'])}")
        handler = asgi_handler(app, endpoint, on_error)

        async def on_connection(stream: trio.abc.Stream) -> None:
            await serve_http(stream, handler)

        bound: Endpoint = await nursery.start(network.serve, endpoint, on_connection)
        task_status.started(bound)
