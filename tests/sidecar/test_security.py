"""Sidecars with mTLS and authorization on the in-memory network, in virtual time."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
import trio

from meshcore.ca import CertificateAuthority
from meshcore.config import read_sidecar_config
from meshcore.identity import spiffe_id
from meshcore.model import Endpoint, Request, Response
from meshcore.sidecar import Sidecar, SidecarAddresses
from meshcore.transport.client import request_once
from meshcore.transport.http1 import serve_http
from meshcore.transport.memory import MemoryNetwork
from meshcore.transport.tls import TlsNetwork, WorkloadTls

BACKEND_APP = Endpoint("backend-app", 8080)
FRONTEND_APP = Endpoint("frontend-app", 8080)
BACKEND_INBOUND = Endpoint("backend", 15006)


async def _echo_app(request: Request) -> Response:
    await trio.sleep(0.001)
    xfcc = request.header("x-forwarded-client-cert") or "-"
    return Response(200, body=xfcc.encode())


@functools.cache
def _ca_folder(root: Path) -> Path:
    folder = root / "mesh-ca"
    CertificateAuthority.create().save(folder)
    return folder


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    return _ca_folder(tmp_path)


async def _sidecar(
    nursery: trio.Nursery,
    network: MemoryNetwork,
    document: dict[str, Any],
    log: list[Any],
    tls_cleartext: bool = False,
) -> tuple[Sidecar, SidecarAddresses]:
    sidecar = Sidecar(
        read_sidecar_config(document), network, access_log=log.append, tls_cleartext=tls_cleartext
    )
    addresses: SidecarAddresses = await nursery.start(sidecar.run)
    return sidecar, addresses


async def _mesh(
    nursery: trio.Nursery,
    network: MemoryNetwork,
    ca: Path,
    *,
    mode: str = "STRICT",
    backend_name: str = "backend",
    authorization: list[dict[str, Any]] | None = None,
    lifetime: str = "24h",
    tls_cleartext: bool = False,
) -> tuple[Sidecar, Sidecar, SidecarAddresses, SidecarAddresses, list[Any]]:
    """A frontend sidecar (outbound) calling a backend sidecar (inbound) over mTLS.

    ``tls_cleartext``: simulate mode's handshake-only mTLS.
    """

    async def app(stream: trio.abc.Stream) -> None:
        await serve_http(stream, _echo_app)

    await nursery.start(network.serve, BACKEND_APP, app)
    log: list[Any] = []
    mtls = {"mode": mode, "ca": str(ca), "certLifetime": lifetime}
    backend, backend_addresses = await _sidecar(
        nursery,
        network,
        {
            "name": backend_name,
            "admin": "backend:15000",
            "inbound": {"listen": str(BACKEND_INBOUND), "app": str(BACKEND_APP)},
            "mtls": mtls,
            "authorization": authorization or [],
        },
        log,
        tls_cleartext,
    )
    frontend, frontend_addresses = await _sidecar(
        nursery,
        network,
        {
            "name": "frontend",
            "admin": "frontend:15000",
            "outbound": {"listen": "frontend:15001"},
            "mtls": mtls,
            "destinations": {"backend": {"endpoints": [str(BACKEND_INBOUND)]}},
        },
        log,
        tls_cleartext,
    )
    return frontend, backend, frontend_addresses, backend_addresses, log


async def _call(network: MemoryNetwork, addresses: SidecarAddresses, path: str = "/") -> Response:
    assert addresses.outbound is not None
    return await request_once(
        network, addresses.outbound, Request("GET", path, (("host", "backend"),))
    )


async def test_calls_between_sidecars_use_mtls_on_one_pooled_connection(
    autojump_clock: trio.abc.Clock, ca: Path
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        frontend, backend, front, _, log = await _mesh(nursery, network, ca)
        for _ in range(5):
            response = await _call(network, front)
            assert response.status == 200
        assert backend.tls is not None
        assert frontend.tls is not None
        xfcc = response.body.decode()
        assert xfcc == (
            f'By={spiffe_id("backend")};Hash={_sha256_of(frontend.tls)};Subject="";'
            f"URI={spiffe_id('frontend')}"
        )
        # TLS 1.3 handshakes are expensive: five requests, one connection, one handshake.
        assert frontend.stats()["counters"]["cluster.outbound.ssl.handshake"] == 1
        assert backend.stats()["counters"]["listener.inbound.ssl.handshake"] == 1
        inbound = [entry for entry in log if entry["reporter"] == "destination"]
        assert inbound[-1]["source"] == "frontend"
        assert inbound[-1]["source_principal"] == spiffe_id("frontend")
        assert inbound[-1]["connection_security_policy"] == "mutual_tls"
        metrics = backend.telemetry.prometheus_text().decode()
        assert 'connection_security_policy="mutual_tls"' in metrics
        assert 'source_workload="frontend"' in metrics
        nursery.cancel_scope.cancel()


def _sha256_of(tls: WorkloadTls) -> str:
    import hashlib
    import ssl

    der = ssl.PEM_cert_to_DER_cert(tls.certificate.cert_pem.decode())
    return hashlib.sha256(der).hexdigest()


async def test_a_server_with_the_wrong_identity_is_refused_and_logged(
    autojump_clock: trio.abc.Clock, ca: Path
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        _, _, front, _, log = await _mesh(nursery, network, ca, backend_name="impostor")
        response = await _call(network, front)
        assert response.status == 503
        assert b"TLS error" in response.body
        entry = log[-1]
        assert "UF" in entry["response_flags"].split(",")  # retried (Istio's default), in vain
        assert "TLS peer identity mismatch" in entry["response_code_details"]
        assert (
            f"expected {spiffe_id('backend')}, got {spiffe_id('impostor')}"
            in (entry["response_code_details"])
        )
        nursery.cancel_scope.cancel()


async def test_strict_answers_plain_text_with_nothing(
    autojump_clock: trio.abc.Clock, ca: Path
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        await _mesh(nursery, network, ca)
        stream = await network.connect(BACKEND_INBOUND)
        await stream.send_all(b"GET / HTTP/1.1\r\nhost: backend\r\n\r\n")
        assert await stream.receive_some() == b""
        nursery.cancel_scope.cancel()


async def test_permissive_serves_plain_text_without_an_identity(
    autojump_clock: trio.abc.Clock, ca: Path
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        _, _, front, _, log = await _mesh(nursery, network, ca, mode="PERMISSIVE")
        forged = (("host", "backend"), ("x-forwarded-client-cert", "URI=spiffe://forged"))
        plain = await request_once(network, BACKEND_INBOUND, Request("GET", "/", forged))
        assert plain.status == 200
        assert plain.body == b"-"  # a forged header never reaches the app
        assert log[-1]["connection_security_policy"] == "none"
        secure = await _call(network, front)
        assert secure.body.endswith(f"URI={spiffe_id('frontend')}".encode())
        nursery.cancel_scope.cancel()


async def test_authorization_denies_with_403_and_counts_it(
    autojump_clock: trio.abc.Clock, ca: Path
) -> None:
    network = MemoryNetwork()
    rules = [
        {"action": "DENY", "from": ["frontend"], "paths": ["/admin/*"]},
        {"action": "AUDIT", "methods": ["GET"]},
    ]
    async with trio.open_nursery() as nursery:
        _, backend, front, _, log = await _mesh(nursery, network, ca, authorization=rules)
        denied = await _call(network, front, "/admin/users")
        assert denied.status == 403
        assert denied.body == b"RBAC: access denied"
        inbound = [entry for entry in log if entry["reporter"] == "destination"]
        assert inbound[-1]["response_flags"] == "RBAC"
        assert inbound[-1]["response_code_details"] == (
            "rbac_access_denied_matched_policy[authorization[0]]"
        )
        allowed = await _call(network, front, "/public")
        assert allowed.status == 200
        counters = backend.stats()["counters"]
        assert counters["rbac.denied"] == 1
        assert counters["rbac.allowed"] == 1
        assert counters["rbac.audited"] == 2
        metrics = backend.telemetry.prometheus_text().decode()
        assert 'response_code="403",response_flags="RBAC"' in metrics
        nursery.cancel_scope.cancel()


async def test_an_allow_rule_lets_only_its_principals_in(
    autojump_clock: trio.abc.Clock, ca: Path
) -> None:
    network = MemoryNetwork()
    rules = [{"action": "ALLOW", "from": ["spiffe://cluster.local/ns/default/sa/checkout"]}]
    async with trio.open_nursery() as nursery:
        _, _, front, _, _ = await _mesh(nursery, network, ca, authorization=rules)
        assert (await _call(network, front)).status == 403
        nursery.cancel_scope.cancel()


async def test_rotation_under_load_fails_no_request(
    autojump_clock: trio.abc.Clock, ca: Path
) -> None:
    network = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        frontend, backend, front, _, _ = await _mesh(nursery, network, ca, lifetime="60s")
        assert backend.tls is not None
        seen = {backend.tls.certificate.serial}
        statuses = []
        # A request every 0.25 s for 100 s (three rotations at 30, 60 and 90 s). Every new
        # client connection handshakes with whatever certificate the backend has then.
        client = TlsNetwork(network, WorkloadTls(CertificateAuthority.load(ca).issue(
            spiffe_id("loadgen"))), expected=lambda endpoint: spiffe_id("backend"))  # fmt: skip
        for step in range(400):
            await trio.sleep_until(step * 0.25)
            statuses.append((await _call(network, front)).status)
            seen.add(backend.tls.certificate.serial)
            if step % 50 == 0:  # and now and then a fresh connection straight to the backend
                direct = await request_once(client, BACKEND_INBOUND, Request("GET", "/"))
                statuses.append(direct.status)
        assert set(statuses) == {200}
        assert backend.stats()["counters"]["tls.rotations"] == 3
        assert frontend.stats()["counters"]["tls.rotations"] == 3
        assert len(seen) == 4
        nursery.cancel_scope.cancel()


async def test_config_requires_a_ca_with_mtls() -> None:
    with pytest.raises(ValueError, match=r"mtls\.ca: ca: required with mode STRICT"):
        read_sidecar_config({"name": "a", "mtls": {"mode": "STRICT"}})


def test_config_reads_authorization_rules() -> None:
    config = read_sidecar_config(
        {
            "name": "a",
            "authorization": [
                {
                    "action": "DENY",
                    "from": ["batch"],
                    "methods": ["POST"],
                    "when": [{"key": "request.headers[X-Tenant]", "values": ["blue"]}],
                }
            ],
        }
    )
    [rule] = config.authorization
    assert rule.principals == ("cluster.local/ns/default/sa/batch",)
    assert rule.when[0].header == "x-tenant"
    assert json.dumps(rule.name) == '"authorization[0]"'
    with pytest.raises(ValueError, match=r"expected request\.headers\[NAME\]"):
        read_sidecar_config(
            {"name": "a", "authorization": [{"when": [{"key": "source.ip", "values": ["x"]}]}]}
        )
