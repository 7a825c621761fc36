"""Profile one sidecar's outbound path over the in-memory network (cProfile).

    python bench/proxy_overhead/profile_memory.py [REQUESTS] [--no-profile]

Sends REQUESTS requests (default 5000) through a sidecar with default layers to an llhttp
upstream, all in one process, and prints the CPU microseconds per request (client and upstream
included; ``time.process_time``, so other processes on the machine do not count) and the 25
functions with the most internal time. Memory streams stand in for sockets, so this shows the
proxy's Python cost without the kernel's.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time

import trio

from meshcore.config import read_sidecar_config
from meshcore.model import Endpoint, Request, Response
from meshcore.sidecar import Sidecar
from meshcore.transport.llhttp import LlhttpClientConnection, serve_http
from meshcore.transport.memory import MemoryNetwork


async def _ok(request: Request) -> Response:
    return Response(200, body=b"hello")


async def main(count: int) -> float:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:

        async def upstream(stream: trio.abc.Stream) -> None:
            await serve_http(stream, _ok)

        await nursery.start(network.serve, Endpoint("up", 80), upstream)
        config = read_sidecar_config(
            {
                "name": "bench",
                "admin": "bench:15000",
                "outbound": {"listen": "bench:15001"},
                "destinations": {"up": {"endpoints": ["up:80"]}},
            }
        )
        sidecar = Sidecar(config, network, access_log=lambda entry: None)
        await nursery.start(sidecar.run)
        conn = LlhttpClientConnection(await network.connect(Endpoint("bench", 15001)))
        request = Request("GET", "/", (("host", "up"),))
        started = time.process_time()
        for _ in range(count):
            await conn.round_trip(request, host="up")
        elapsed = time.process_time() - started
        nursery.cancel_scope.cancel()
    return elapsed


if __name__ == "__main__":
    numbers = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    count = int(numbers[0]) if numbers else 5000
    trio.run(main, 200)  # warm up imports and caches
    if "--no-profile" in sys.argv:
        print(f"{trio.run(main, count) / count * 1e6:.0f} us per request (not profiled)")
        raise SystemExit(0)
    profiler = cProfile.Profile()
    profiler.enable()
    elapsed = trio.run(main, count)
    profiler.disable()
    print(f"{elapsed / count * 1e6:.0f} us per request (profiled)")
    print(f"{trio.run(main, count) / count * 1e6:.0f} us per request (not profiled)")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
