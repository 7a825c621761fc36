"""`meshchaos proxy` as a real process over real sockets: retries, the trace, a clean drain."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest
import trio
import yaml

from meshcore.errors import UpstreamError
from meshcore.model import Endpoint, Request, Response
from meshcore.transport.client import request_once
from meshcore.transport.http1 import serve_http
from meshcore.transport.network import TcpNetwork

pytestmark = pytest.mark.e2e


async def test_standalone_proxy_retries_and_drains_on_sigterm(tmp_path: Path) -> None:
    network = TcpNetwork()
    good, bad, outbound, admin = network.allocate("127.0.0.1", 4)

    async def slow_ok(request: Request) -> Response:
        await trio.sleep(float(request.header("x-sleep") or 0))
        return Response(200, body=b"ok")

    async def unavailable(request: Request) -> Response:
        return Response(503, body=b"down")

    config = {
        "name": "client",
        "admin": str(admin),
        "outbound": {"listen": str(outbound)},
        "destinations": {
            "backend": {
                "endpoints": [str(bad), str(good)],
                "loadBalancer": {"simple": "ROUND_ROBIN"},
            }
        },
    }
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "access.log"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for endpoint, app in ((good, slow_ok), (bad, unavailable)):

                async def handler(stream: trio.abc.Stream, app: object = app) -> None:
                    await serve_http(stream, app)  # type: ignore[arg-type]

                await nursery.start(network.serve, endpoint, handler)
            with log.open("wb") as sink:
                process = await trio.lowlevel.open_process(
                    [sys.executable, "-m", "meshcore", "--config", str(path)], stdout=sink
                )
                try:
                    await _wait_ready(network, admin)
                    # Istio's default policy retries the 503 of `bad` on `good`.
                    response = await request_once(
                        network, outbound, Request("GET", "/", (("host", "backend"),))
                    )
                    assert response.status == 200
                    # A slow request in flight when SIGTERM arrives still completes.
                    slow = Request("GET", "/slow", (("host", "backend"), ("x-sleep", "0.5")))
                    answers: list[int] = []

                    async def in_flight() -> None:
                        answers.append((await request_once(network, outbound, slow)).status)

                    async with trio.open_nursery() as calls:
                        calls.start_soon(in_flight)
                        await trio.sleep(0.2)
                        process.send_signal(signal.SIGTERM)
                    assert answers == [200]
                    assert await process.wait() == 0
                finally:
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
            nursery.cancel_scope.cancel()
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    first = entries[0]
    assert first["attempt_count"] == 2
    assert [a["host"] for a in first["attempts"]] == [str(bad), str(good)]
    assert first["attempts"][0]["decision"].startswith(
        "retry: 503 matched retryOn retriable-status-codes"
    )
    assert entries[-1]["path"] == "/slow"
    assert entries[-1]["response_code"] == 200


async def _wait_ready(network: TcpNetwork, admin: Endpoint) -> None:
    while True:
        try:
            if (await request_once(network, admin, Request("GET", "/ready"))).status == 200:
                return
        except UpstreamError:
            pass
        await trio.sleep(0.05)
