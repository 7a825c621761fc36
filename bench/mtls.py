"""Sidecar CPU per request with mTLS off and on, and the new-handshake rate.

Two real sidecar processes between a client and nginx, on 127.0.0.1:

    wrk --> sidecar A (outbound) --mTLS or plain--> sidecar B (inbound) --> nginx

For DISABLE and STRICT, wrk keeps ``--connections`` keep-alive connections busy for
``--duration`` seconds (closed loop, as ``bench/proxy_overhead/run.py`` does) and the script
reads each sidecar's CPU time from /proc before and after: CPU per request is that time over
the requests wrk completed. Connections between the sidecars are pooled, so a request pays the
TLS record layer, not a handshake; the script shows how many handshakes B did. Then a client
in this process opens a new mTLS connection to B per request (handshake, one request, close),
which gives the handshake rate one sidecar sustains and its CPU per handshake; that client
competes for the same two cores.

    python bench/mtls.py [--duration 5] [--connections 16]

Needs ``nginx`` and ``wrk`` on the PATH (Debian: ``apt-get install nginx-light wrk``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import trio
import yaml
from _servers import free_port, nginx, running
from proxy_overhead.run import wrk

from meshcore.ca import CertificateAuthority
from meshcore.identity import spiffe_id
from meshcore.model import Endpoint, Request
from meshcore.transport.http1 import ClientConnection
from meshcore.transport.network import Network, TcpNetwork
from meshcore.transport.tls import TlsNetwork, WorkloadTls

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """Return the user + system CPU seconds of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def stats(admin: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats", timeout=5) as response:
        return dict(json.loads(response.read())["counters"])


@contextlib.contextmanager
def sidecar(folder: Path, name: str, document: Mapping[str, object]) -> Iterator[tuple[int, int]]:
    """Run one sidecar process; yield its pid and admin port."""
    admin = free_port()
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "admin": f"127.0.0.1:{admin}", **document}))
    argv = [sys.executable, "-m", "meshcore", "--config", str(path)]
    with running(argv, admin) as process:
        yield process.pid, admin


async def connection_per_request(
    network: Network, endpoint: Endpoint, connections: int, duration_s: float
) -> int:
    """Keep ``connections`` new-connection requests in flight for ``duration_s``; count them."""
    done = 0
    request = Request("GET", "/", (("host", "backend"),))

    async def user() -> None:
        nonlocal done
        while True:
            conn = ClientConnection(await network.connect(endpoint))
            response = await conn.round_trip(request, host="backend")
            assert response.status == 200, response
            done += 1
            await conn.aclose()

    with trio.move_on_after(duration_s):
        async with trio.open_nursery() as nursery:
            for _ in range(connections):
                nursery.start_soon(user)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, nginx() as app:
        folder = Path(tmp)
        authority = CertificateAuthority.create()
        authority.save(folder / "ca")
        client_tls = WorkloadTls(authority.issue(spiffe_id("bench")))
        print(f"{'mode':<9} {'req/s':>8} {'A µs/req':>9} {'B µs/req':>9} "
              f"{'A+B µs/req':>11} {'B handshakes':>13}")  # fmt: skip
        for mode in ("DISABLE", "STRICT"):
            mtls = {"mode": mode, "ca": str(folder / "ca")}
            b_port, a_port = free_port(), free_port()
            b_doc = {"inbound": {"listen": f"127.0.0.1:{b_port}", "app": f"127.0.0.1:{app}"},
                     "mtls": mtls}  # fmt: skip
            backend = {"backend": {"endpoints": [f"127.0.0.1:{b_port}"]}}
            a_doc = {"outbound": {"listen": f"127.0.0.1:{a_port}"}, "mtls": mtls,
                     "destinations": backend}  # fmt: skip
            with sidecar(folder, "backend", b_doc) as (b_pid, b_admin), \
                    sidecar(folder, "frontend", a_doc) as (a_pid, _):  # fmt: skip
                warm_up = argparse.Namespace(threads=1, connections=2, duration=1)
                wrk("warm-up", a_port, warm_up)
                before = cpu_s(a_pid), cpu_s(b_pid)
                load = argparse.Namespace(threads=1, connections=args.connections,
                                          duration=args.duration)  # fmt: skip
                count = wrk("mtls", a_port, load).requests
                used = cpu_s(a_pid) - before[0], cpu_s(b_pid) - before[1]
                handshakes = stats(b_admin).get("listener.inbound.ssl.handshake", 0)
                print(
                    f"{mode:<9} {count / args.duration:>8.0f} {used[0] / count * 1e6:>9.0f} "
                    f"{used[1] / count * 1e6:>9.0f} {sum(used) / count * 1e6:>11.0f} "
                    f"{handshakes:>13.0f}"
                )
                if mode == "STRICT":
                    network = TlsNetwork(
                        TcpNetwork(), client_tls, expected=lambda e: spiffe_id("backend")
                    )
                    direct = Endpoint("127.0.0.1", b_port)
                    start_hs = stats(b_admin).get("listener.inbound.ssl.handshake", 0)
                    start_cpu = cpu_s(b_pid)
                    count = trio.run(
                        connection_per_request, network, direct, args.connections, args.duration
                    )  # fmt: skip
                    b_cpu = cpu_s(b_pid) - start_cpu
                    done = stats(b_admin).get("listener.inbound.ssl.handshake", 0) - start_hs
                    print(
                        f"new connection per request to B: {done / args.duration:.0f} "
                        f"handshakes/s, B CPU {b_cpu / done * 1e6:.0f} µs per "
                        f"handshake + request ({count} requests)"
                    )


if __name__ == "__main__":
    main()
