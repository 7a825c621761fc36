"""A standalone sidecar process: read the config file, serve until SIGINT or SIGTERM.

The access log goes to standard output, one JSON line per request, written in batches
(:mod:`meshcore.accesslog`). On SIGINT or SIGTERM the sidecar drains: it keeps serving while
requests are in flight, for at most :data:`~meshcore.sidecar.DRAIN_S` (5 s), then stops. Exit
codes: 0 after a clean shutdown, 2 when the configuration is invalid (each problem on standard
error).
"""

from __future__ import annotations

import signal
import sys

import trio
import yaml

from meshcore.accesslog import JsonLinesLog
from meshcore.config import read_sidecar_config
from meshcore.fields import ConfigError
from meshcore.sidecar import Sidecar
from meshcore.transport.network import TcpNetwork

__all__ = ["run_standalone"]


def run_standalone(config_path: str) -> int:
    """Run the sidecar configured in ``config_path``; return the process exit code."""
    try:
        with open(config_path, encoding="utf-8") as file:
            document = yaml.safe_load(file)
        config = read_sidecar_config(document)
    except (OSError, yaml.YAMLError) as error:
        print(f"{config_path}: {error}", file=sys.stderr)
        return 2
    except ConfigError as error:
        for problem in error.problems:
            print(f"{config_path}: {problem.dotted_path()}: {problem.message}", file=sys.stderr)
        return 2

    access_log = JsonLinesLog()  # buffered: see meshcore.accesslog for what a kill can lose

    async def serve() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(access_log.run)
                sidecar = Sidecar(config, TcpNetwork(), access_log=access_log)
                await nursery.start(sidecar.run)
                async for _ in signals:
                    await sidecar.drain()
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(serve)
    finally:
        access_log.flush()
    return 0
