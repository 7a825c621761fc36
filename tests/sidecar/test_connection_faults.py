"""Partitions, toxics and certificate faults at the sidecar, over the memory network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
from test_security import _ca_folder, _call, _mesh

from meshcore.model import Request, Response
from meshcore.sidecar import SidecarAddresses
from meshcore.transport.client import request_once
from meshcore.transport.memory import MemoryNetwork


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    return _ca_folder(tmp_path)


async def _admin(
    network: MemoryNetwork, addresses: SidecarAddresses, method: str, path: str, body: Any = None
) -> Response:
    payload = b"" if body is None else json.dumps(body).encode()
    headers = (("content-type", "application/json"),) if body is not None else ()
    return await request_once(network, addresses.admin, Request(method, path, headers, payload))


def _flags(log: list[Any]) -> list[str]:
    return [e["response_flags"] for e in log if e["reporter"] == "source"]


async def test_edge_partition_fails_like_a_refused_connect(
    autojump_clock: trio.abc.Clock, ca: Path
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        frontend, _, front, _, log = await _mesh(nursery, network, ca)
        assert (await _call(network, front)).status == 200  # a pooled connection is open
        fault = {"name": "cut", "destination": "backend", "partition": {}}
        assert (await _admin(network, front, "POST", "/faults", fault)).status == 201
        response = await _call(network, front)
        assert response.status == 503
        assert "UF" in _flags(log)[-1].split(",")
        counters = frontend.stats()["counters"]
        assert counters["partition.connects_refused"] == 3  # the try and Istio's 2 retries
        assert counters["partition.connections_reset"] == 1  # the pooled one
        assert (await _admin(network, front, "DELETE", "/faults/cut")).status == 204
        assert (await _call(network, front)).status == 200
        nursery.cancel_scope.cancel()


async def test_service_partition_refuses_and_resets(
    autojump_clock: trio.abc.Clock, ca: Path
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        _, backend, front, back, _ = await _mesh(nursery, network, ca)
        assert (await _call(network, front)).status == 200
        fault = {"name": "cut", "partition": {}}
        assert (await _admin(network, back, "POST", "/faults", fault)).status == 201
        assert (await _call(network, front)).status == 503
        counters = backend.stats()["counters"]
        assert counters["partition.connections_reset"] == 1
        assert counters["partition.connections_refused"] == 3
        await _admin(network, back, "DELETE", "/faults")
        assert (await _call(network, front)).status == 200
        nursery.cancel_scope.cancel()


async def test_a_toxic_in_toxiproxy_spelling_delays_the_answer(
    autojump_clock: trio.abc.Clock, ca: Path
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        _, backend, front, back, _ = await _mesh(nursery, network, ca)
        assert (await _call(network, front)).status == 200
        toxic = {
            "name": "slow",
            "type": "latency",
            "stream": "downstream",
            "toxicity": 1.0,
            "attributes": {"latency": 100, "jitter": 0},
        }
        assert (await _admin(network, back, "POST", "/faults", toxic)).status == 201
        start = trio.current_time()
        assert (await _call(network, front)).status == 200
        assert round(trio.current_time() - start, 6) == 0.101  # the app's 1 ms + 100 ms
        listed = json.loads((await _admin(network, back, "GET", "/faults")).body)
        assert listed[0]["toxic"] == {
            "toxic": {"latency_s": 0.1, "jitter_s": 0.0},
            "stream": "downstream",
            "toxicity": 1.0,
        }
        assert backend.stats()["counters"]["toxic.latency.connections"] == 1
        nursery.cancel_scope.cancel()


async def test_the_experiment_spelling_is_accepted_too(
    autojump_clock: trio.abc.Clock, ca: Path
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        _, _, _, back, _ = await _mesh(nursery, network, ca)
        toxic = {"name": "thin", "toxic": {"type": "bandwidth", "rate": "10KB/s", "percent": 50}}
        response = await _admin(network, back, "POST", "/faults", toxic)
        assert json.loads(response.body)["toxic"]["toxicity"] == 0.5
        bad = {"name": "x", "type": "latency", "attributes": {"latency": -1}}
        response = await _admin(network, back, "POST", "/faults", bad)
        assert response.status == 400
        assert "attributes.latency" in response.body.decode()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("kind", "counter"),
    [
        ("certExpired", "cluster.outbound.ssl.connection_error"),
        ("untrustedCa", "cluster.outbound.ssl.connection_error"),
        ("wrongIdentity", "cluster.outbound.ssl.fail_verify_san"),
    ],
)
@pytest.mark.parametrize("tls_cleartext", [False, True], ids=["encrypted", "handshake-only"])
async def test_certificate_faults_are_refused_under_strict_mtls(
    autojump_clock: trio.abc.Clock, ca: Path, kind: str, counter: str, tls_cleartext: bool
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        frontend, backend, front, back, log = await _mesh(
            nursery, network, ca, tls_cleartext=tls_cleartext
        )
        assert (
            await _admin(network, back, "POST", "/faults", {"name": "bad", kind: {}})
        ).status == 201
        response = await _call(network, front)
        assert response.status == 503
        assert "UF" in _flags(log)[-1].split(",")
        assert frontend.stats()["counters"][counter] >= 1
        assert (await _admin(network, back, "DELETE", "/faults/bad")).status == 204
        assert (await _call(network, front)).status == 200
        assert backend.tls is not None
        nursery.cancel_scope.cancel()
