"""A tiny HTTP/1.1 server on trio + h11 with a scripted delay, for the benchmarks.

``python _scripted_server.py PORT fixed MS``: every answer after MS milliseconds.
``python _scripted_server.py PORT freeze EVERY_S FOR_S``: answers at once, except that the
server freezes for FOR_S seconds every EVERY_S seconds (requests arriving then wait).
"""

from __future__ import annotations

import sys

import trio

from meshcore.model import Endpoint, Request, Response
from meshcore.transport.http1 import serve_http
from meshcore.transport.network import TcpNetwork


def main() -> None:
    port, mode, *args = sys.argv[1:]

    async def run() -> None:
        origin = trio.current_time()

        async def answer(request: Request) -> Response:
            if mode == "fixed":
                await trio.sleep(float(args[0]) / 1000)
            else:
                every, length = float(args[0]), float(args[1])
                phase = (trio.current_time() - origin) % every
                if phase >= every - length:
                    await trio.sleep(every - phase)
            return Response(200, body=b"ok")

        async def handler(stream: trio.abc.Stream) -> None:
            await serve_http(stream, answer)

        await TcpNetwork().serve(Endpoint("127.0.0.1", int(port)), handler)

    trio.run(run)


if __name__ == "__main__":
    main()
