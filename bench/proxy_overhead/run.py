"""Proxy overhead: wrk against nginx, nginx behind nginx, and nginx behind one meshchaos sidecar.

    python bench/proxy_overhead/run.py [--duration 10] [--connections 16] [--threads 1]
                                       [--repeat 1] [--sidecar-only]

Needs ``nginx`` and ``wrk`` on the PATH (Debian: ``apt-get install nginx-light wrk``). Every
target runs side by side in the same run, so the ratios compare like with like on this machine.
The sidecar runs with its default layers (Istio's default retry policy, least-request balancing,
telemetry and the access log, written to /dev/null) and Prometheus metrics on. Its CPU time is
read from /proc/PID/stat before and after the load, and divided by the requests wrk completed.
With ``--repeat N`` the sidecar is measured N times (a new process each time) and the best and
the spread are printed; ``--sidecar-only`` skips the two nginx references.

Prints requests/s, p50 and p99 of each target, the ratios to nginx-behind-nginx, and the
sidecar's CPU microseconds per request against the target of 350 us (Istio reports 0.35 vCPU
per 1000 requests/s for Envoy).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

TARGET_US_PER_REQUEST = 350.0
_NGINX = """
worker_processes 1;
daemon off;
master_process off;
pid {dir}/nginx-{name}.pid;
error_log {dir}/nginx-{name}.err warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body-{name};
    proxy_temp_path {dir}/proxy-{name};
    fastcgi_temp_path {dir}/fastcgi-{name};
    uwsgi_temp_path {dir}/uwsgi-{name};
    scgi_temp_path {dir}/scgi-{name};
    {upstream}
    server {{
        listen 127.0.0.1:{port};
        location / {{ {body} }}
    }}
}}
"""


@dataclass(frozen=True)
class Result:
    """What wrk reported for one target."""

    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextmanager
def process(argv: list[str], port: int, **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, **kwargs)  # type: ignore[call-overload]
    try:
        wait_port(port)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def nginx(workdir: Path, name: str, port: int, body: str, upstream: int = 0) -> list[str]:
    conf = workdir / f"nginx-{name}.conf"
    block = f"upstream backend {{ server 127.0.0.1:{upstream}; keepalive 64; }}" if upstream else ""
    conf.write_text(_NGINX.format(dir=workdir, name=name, port=port, body=body, upstream=block))
    return ["nginx", "-c", str(conf), "-p", str(workdir)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk(name: str, port: int, args: argparse.Namespace, host: str = "backend") -> Result:
    output = subprocess.run(
        ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
         "-H", f"Host: {host}", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    # Anchored: a "+/- Stdev" column such as 91.50% must not pass for the 50% percentile.
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    return Result(name, rps, p50, p99, requests)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per target")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="sidecar measurements")
    parser.add_argument("--sidecar-only", action="store_true", help="skip the nginx references")
    args = parser.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install nginx-light wrk", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        origin, front, sidecar_port, admin = (free_port() for _ in range(4))
        config = workdir / "sidecar.yaml"
        config.write_text(yaml.safe_dump({
            "name": "bench",
            "admin": f"127.0.0.1:{admin}",
            "outbound": {"listen": f"127.0.0.1:{sidecar_port}"},
            "destinations": {"backend": {"endpoints": [f"127.0.0.1:{origin}"]}},
        }))  # fmt: skip
        results = []
        cpu_runs: list[float] = []
        with process(nginx(workdir, "origin", origin, 'return 200 "hello\\n";'), origin):
            if not args.sidecar_only:
                results.append(wrk("nginx", origin, args))
                front_conf = nginx(
                    workdir, "front", front,
                    'proxy_pass http://backend; proxy_http_version 1.1; '
                    'proxy_set_header Connection "";',
                    origin,
                )  # fmt: skip
                with process(front_conf, front):
                    results.append(wrk("nginx -> nginx", front, args))
            argv = [sys.executable, "-m", "meshcore", "--config", str(config)]
            for _ in range(args.repeat):
                with process(argv, sidecar_port, stdout=subprocess.DEVNULL) as proxy:
                    wrk(
                        "warm-up", sidecar_port, argparse.Namespace(**{**vars(args), "duration": 1})
                    )
                    before = cpu_seconds(proxy.pid)
                    result = wrk("meshchaos -> nginx", sidecar_port, args)
                    cpu_runs.append((cpu_seconds(proxy.pid) - before) / result.requests * 1e6)
                    results.append(result)
    reference = results[1] if not args.sidecar_only else results[0]
    header = ("target", "req/s", "p50 ms", "p99 ms", "rps ratio", "p99 ratio")
    print("{:<20} {:>10} {:>8} {:>8} {:>10} {:>10}".format(*header))
    for r in results:
        print(f"{r.name:<20} {r.rps:>10.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
              f"{r.rps / reference.rps:>10.2f} {r.p99_ms / reference.p99_ms:>10.2f}")  # fmt: skip
    cpu_us = min(cpu_runs)
    verdict = "meets" if cpu_us <= TARGET_US_PER_REQUEST else "misses"
    target = f"{TARGET_US_PER_REQUEST:.0f} us"
    spread = ""
    if len(cpu_runs) > 1:
        runs = ", ".join(f"{run:.0f}" for run in cpu_runs)
        spread = f", best of {len(cpu_runs)}: {runs}"
    print(f"sidecar CPU: {cpu_us:.0f} us per request ({verdict} the {target} target{spread})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
