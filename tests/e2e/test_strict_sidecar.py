"""A standalone STRICT sidecar on 127.0.0.1, probed with real clients: Python's ssl, openssl."""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e

CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client"
GET = b"GET / HTTP/1.1\r\nHost: checkout\r\nConnection: close\r\n\r\n"

# A plain-HTTP app that echoes the identity the sidecar hands it.
APP = textwrap.dedent(
    """
    import sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self):
            body = (self.headers.get("x-forwarded-client-cert") or "-").encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
    """
)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _meshchaos(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "harness.cli", *args], check=True, timeout=30)


@dataclass(frozen=True)
class Strict:
    port: int
    ca: Path
    client: Path  # PREFIX of a mesh-signed client certificate
    foreign: Path  # PREFIX of a certificate from another CA, same SPIFFE ID


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strict]:
    root = tmp_path_factory.mktemp("strict")
    _meshchaos("ca", "init", str(root / "ca"))
    _meshchaos(
        "ca", "issue", str(root / "ca"), "--spiffe", CLIENT_ID, "--out", str(root / "client")
    )
    _meshchaos("ca", "init", str(root / "other-ca"))
    _meshchaos("ca", "issue", str(root / "other-ca"), "--spiffe", CLIENT_ID,
               "--out", str(root / "foreign"))  # fmt: skip
    app_port, inbound, admin = _free_ports(3)
    config = {
        "name": "checkout",
        "admin": f"127.0.0.1:{admin}",
        "inbound": {"listen": f"127.0.0.1:{inbound}", "app": f"127.0.0.1:{app_port}"},
        "mtls": {"mode": "STRICT", "ca": str(root / "ca")},
        "authorization": [{"action": "DENY", "from": [CLIENT_ID], "paths": ["/admin/*"]}],
    }
    (root / "sidecar.yaml").write_text(yaml.safe_dump(config))
    (root / "app.py").write_text(APP)
    logs = (root / "app.log").open("wb"), (root / "sidecar.log").open("wb")
    processes = [
        subprocess.Popen([sys.executable, str(root / "app.py"), str(app_port)], stdout=logs[0],
                         stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "harness.cli", "proxy", "--config",
                          str(root / "sidecar.yaml")], stdout=logs[1], stderr=subprocess.STDOUT),
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # noqa: TID251 - a sync test polling a real process
        yield Strict(inbound, root / "ca", root / "client", root / "foreign")
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        for log in logs:
            log.close()


def _context(strict: Strict, prefix: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # mesh identities are SPIFFE URIs, not host names
    context.load_verify_locations(strict.ca / "ca-cert.pem")
    context.load_cert_chain(f"{prefix}-cert.pem", f"{prefix}-key.pem")
    return context


def _get(strict: Strict, path: str) -> tuple[int, bytes, dict[str, object]]:
    conn = http.client.HTTPSConnection(
        "127.0.0.1", strict.port, context=_context(strict, strict.client), timeout=10
    )
    try:
        conn.request("GET", path, headers={"host": "checkout"})
        response = conn.getresponse()
        assert conn.sock is not None
        peer = conn.sock.getpeercert()  # type: ignore[attr-defined]
        return response.status, response.read(), peer
    finally:
        conn.close()


def test_python_ssl_with_a_mesh_certificate_gets_200(strict: Strict) -> None:
    status, body, peer = _get(strict, "/")
    assert status == 200
    assert body.startswith(b"By=spiffe://cluster.local/ns/default/sa/checkout;Hash=")
    assert body.endswith(f"URI={CLIENT_ID}".encode())
    assert ("URI", "spiffe://cluster.local/ns/default/sa/checkout") in peer["subjectAltName"]


def test_a_deny_rule_answers_403(strict: Strict) -> None:
    status, body, _ = _get(strict, "/admin/users")
    assert status == 403
    assert body == b"RBAC: access denied"


def _s_client(strict: Strict, *args: str) -> bytes:
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is needed (apt-get install openssl)"
    result = subprocess.run(
        [openssl, "s_client", "-connect", f"127.0.0.1:{strict.port}", "-tls1_3", "-quiet",
         "-ign_eof", "-CAfile", str(strict.ca / "ca-cert.pem"), *args],
        input=GET, capture_output=True, timeout=20, check=False,
    )  # fmt: skip
    return result.stdout


def test_openssl_with_a_mesh_certificate_gets_200(strict: Strict) -> None:
    client = strict.client
    out = _s_client(strict, "-cert", f"{client}-cert.pem", "-key", f"{client}-key.pem")
    assert out.startswith(b"HTTP/1.1 200 ")


def test_openssl_without_a_client_certificate_gets_nothing(strict: Strict) -> None:
    assert _s_client(strict) == b""


def test_openssl_with_a_foreign_ca_certificate_gets_nothing(strict: Strict) -> None:
    foreign = strict.foreign
    assert _s_client(strict, "-cert", f"{foreign}-cert.pem", "-key", f"{foreign}-key.pem") == b""


def test_plain_http_to_strict_gets_nothing(strict: Strict) -> None:
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        sock.sendall(GET)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    assert received == b""
