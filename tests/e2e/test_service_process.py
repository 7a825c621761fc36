"""A scripted replica's process (``python -m harness.services``) on 127.0.0.1.

Real mode serves a scripted service with hypercorn on TCP: it answers over keep-alive with a
``content-length`` (never chunked), and SIGTERM stops it cleanly.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import yaml

from meshcore.errors import ConnectFailure
from meshcore.model import Request
from meshcore.transport.llhttp import LlhttpClientConnection
from meshcore.transport.network import TcpNetwork

pytestmark = pytest.mark.e2e

_DOCUMENT = {
    "apiVersion": "meshchaos/v1",
    "kind": "Experiment",
    "metadata": {"name": "one-service"},
    "spec": {
        "seed": 1,
        "duration": "1s",
        "services": [{"name": "backend", "script": [{"sleep": "1ms"}], "responseSize": "300B"}],
        "load": {"target": "backend", "rate": "1/s"},
    },
}


async def test_a_scripted_replica_serves_keep_alive_and_stops_on_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(_DOCUMENT))
    network = TcpNetwork()
    listen, outbound = network.allocate("127.0.0.1", 2)
    argv = [sys.executable, "-m", "harness.services", str(path), "--service", "backend",
            "--replica", "0", "--listen", f"{listen.host}:{listen.port}",
            "--outbound", f"{outbound.host}:{outbound.port}"]  # fmt: skip
    process = await trio.lowlevel.open_process(argv, stderr=subprocess.PIPE)
    try:
        with trio.fail_after(20):
            while True:  # until it listens
                try:
                    stream = await network.connect(listen)
                    break
                except ConnectFailure:
                    await trio.sleep(0.05)
            conn = LlhttpClientConnection(stream)
            for _ in range(3):  # one connection, several requests
                response = await conn.round_trip(Request("GET", "/", (), b""), host="backend")
                assert (response.status, response.body) == (200, b"x" * 300)
                assert response.header("content-length") == "300"
                assert response.header("transfer-encoding") is None
            assert conn.reusable
            await conn.stream.aclose()
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
    finally:
        process.kill()
        await process.wait()
