"""A user's own program for ``command:`` services: a tiny trio + h11 server with keep-alive.

It listens on 127.0.0.1:$MESHCHAOS_PORT and answers ``200 h11-server``. With
``--exit-after SECONDS`` it exits by itself (status 3) that long after starting, as a service
that crashes does.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial

import h11
import trio


async def _serve(stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    async with stream:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                if not data and conn.their_state is not h11.MUST_CLOSE:
                    return
                continue
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                if event is h11.PAUSED and conn.our_state is h11.DONE:
                    conn.start_next_cycle()
                    continue
                return
            if isinstance(event, h11.EndOfMessage):
                body = b"h11-server\n"
                headers = [("content-length", str(len(body)))]
                await stream.send_all(conn.send(h11.Response(status_code=200, headers=headers)))
                await stream.send_all(conn.send(h11.Data(data=body)))
                await stream.send_all(conn.send(h11.EndOfMessage()))
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()


async def main(exit_after_s: float | None) -> int:
    """Serve until killed, or stop after ``exit_after_s`` and return the exit status 3."""
    port = int(os.environ["MESHCHAOS_PORT"])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(trio.serve_tcp, _serve, port, host="127.0.0.1"))
        if exit_after_s is not None:
            await trio.sleep(exit_after_s)
            nursery.cancel_scope.cancel()
    return 3


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exit-after", type=float, default=None)
    sys.exit(trio.run(main, parser.parse_args().exit_after))
