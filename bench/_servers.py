"""Reference servers for the benchmarks: nginx, and a scriptable h11 server on trio.

Every server listens on 127.0.0.1 only and is stopped (and reaped) when its context exits.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    # nginx closes a keep-alive connection after 1,000 requests by default: at 8,000/s a
    # load generator would reconnect 8 times a second, which measures connects, not requests.
    keepalive_requests 1000000;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout_s: float = 10.0) -> None:
    """Block until something accepts connections on ``port``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def running(argv: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends; wait for ``port`` to listen first."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def nginx() -> Iterator[int]:
    """Run nginx answering 200 "ok" on a free port; yield the port."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        conf = Path(folder) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=folder, port=port))
        with running([binary, "-c", str(conf), "-e", f"{folder}/error.log"], port):
            yield port


@contextlib.contextmanager
def scripted_server(mode: str, *args: str) -> Iterator[int]:
    """Run ``bench/_scripted_server.py MODE`` on a free port; yield the port."""
    port = free_port()
    script = Path(__file__).with_name("_scripted_server.py")
    with running([sys.executable, str(script), str(port), mode, *args], port):
        yield port


def meshchaos_load(url: str, rate: float, duration: str, *extra: str) -> dict[str, object]:
    """Run ``meshchaos load --json`` and return its object."""
    import json

    argv = [sys.executable, "-m", "harness.loadcmd", url, "--rate", str(rate),
            "--duration", duration, "--json", *extra]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout))


def wrk(url: str, duration: str, connections: int = 64, threads: int = 1) -> dict[str, float]:
    """Run wrk (closed loop) and return requests/s and its latency percentiles in ms."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}", "--latency", url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    figures: dict[str, float] = {}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            figures["rps"] = float(words[1])
        elif len(words) == 2 and words[0] in ("50%", "75%", "90%", "99%"):
            figures[f"p{words[0][:-1]}"] = _ms(words[1])
    return figures


def _ms(text: str) -> float:
    for suffix, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)
