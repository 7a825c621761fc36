"""Synthetic services: an ASGI app per replica, built from a service's spec.

Each request runs the service's ``script``: ``sleep`` steps wait for a duration drawn from
their distribution, ``call`` steps call another service through the replica's outbound
sidecar (``Host`` names the destination, as a plain-HTTP app behind an Istio sidecar does),
and a nested list runs its steps concurrently. Then ``errorRate`` of the requests are answered
500 by the service itself, and the rest 200 with ``responseSize`` bytes. A failed call (a 5xx
or no answer) answers 502 unless the step says ``onError: ignore``.

Hypercorn serves the app, one process per replica (:func:`main`), as DESIGN.md 1 has it for
real mode; a service given by ``app: module:attribute`` is the user's own ASGI app, imported
and served the same way. Simulate mode serves the same app with :func:`harness.asgi.serve_asgi`
over the in-memory network (docs/ARCHITECTURE.md says why). The synthetic app implements the
ASGI lifespan protocol: hypercorn 0.18's trio worker crashes on an app that ignores it
(DESIGN.md 7). It sends ``content-length``, so hypercorn writes a response in one piece rather
than in chunked parts.

A ``sleep`` step sleeps with the ``sleep`` function it is given: ``trio.sleep`` in simulate
mode (virtual time), :func:`precise_sleep` on the wall clock. trio's timers wait in
``epoll_wait``, whose timeout is whole milliseconds, rounded up: a 4.3 ms sleep lasts 5 ms and
more, 0.77 ms too long at the median on the development VM, against 0.17 ms with a timerfd.
"""

from __future__ import annotations

import argparse
import importlib
import random
import signal
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from harness.experiment import CallStep, ParallelStep, ServiceSpec, SleepStep, Step
from harness.pacing import SleeperFactory, precise_sleepers
from meshcore.errors import UpstreamError
from meshcore.model import Endpoint, Request
from meshcore.transport.network import Network, TcpNetwork
from meshcore.transport.pool import UpstreamPool

__all__ = ["Sleep", "SyntheticService", "main", "precise_sleep"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

Sleep = Callable[[float], Awaitable[None]]

# Headers an app must pass from the request it serves to the calls it makes, so that a trace
# and a request id follow one user request across the mesh (Istio asks apps to do the same).
_PROPAGATED = ("x-request-id", "traceparent", "tracestate")


class CallFailed(Exception):
    """A ``call`` step failed and its failure ends the request."""


def precise_sleep(sleepers: SleeperFactory) -> Sleep:
    """Return a sleep function on ``sleepers`` (one sleeper per sleep: they wake one task)."""

    async def sleep(seconds: float) -> None:
        sleeper = sleepers()
        try:
            await sleeper.sleep_until(trio.current_time() + seconds)
        finally:
            sleeper.close()

    return sleep


class SyntheticService:
    """The ASGI app of one replica of a synthetic service; ``sleep`` runs its sleep steps."""

    def __init__(
        self,
        spec: ServiceSpec,
        *,
        rng: random.Random,
        network: Network,
        outbound: Endpoint,
        sleep: Sleep = trio.sleep,
    ) -> None:
        self.spec = spec
        self._sleep = sleep
        self._rng = rng
        self._network = network
        self._outbound = outbound
        self._pool: UpstreamPool | None = None
        self._body = b"x" * spec.response_size_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope (``lifespan`` or ``http``)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        # The lifespan task lives as long as the server: it hosts the outbound pool's nursery.
        async with trio.open_nursery() as nursery:
            self._pool = UpstreamPool(self._network, nursery)
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    nursery.cancel_scope.cancel()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass  # the request body only matters for its size on the wire
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        propagated = tuple((name, headers[name]) for name in _PROPAGATED if name in headers)
        try:
            await self._run(self.spec.script, propagated)
            if self._rng.random() < self.spec.error_rate:
                status, body = 500, b"injected service error\n"
            else:
                status, body = 200, self._body
        except CallFailed as failure:
            status, body = 502, f"call failed: {failure}\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _run(self, steps: tuple[Step, ...], propagated: tuple[tuple[str, str], ...]) -> None:
        for step in steps:
            if isinstance(step, SleepStep):
                await self._sleep(step.distribution.sample(self._rng))
            elif isinstance(step, CallStep):
                await self._call(step, propagated)
            elif isinstance(step, ParallelStep):
                async with trio.open_nursery() as nursery:
                    for branch in step.steps:
                        nursery.start_soon(self._run, (branch,), propagated)

    async def _call(self, step: CallStep, propagated: tuple[tuple[str, str], ...]) -> None:
        assert self._pool is not None, "lifespan startup runs before any request"
        request = Request(
            method=step.method,
            target=step.path,
            headers=(("host", step.service), *propagated),
            body=b"x" * step.size_bytes,
        )
        try:
            response = await self._pool.round_trip(self._outbound, request)
        except UpstreamError as error:
            failure = f"{step.service}: {error}"
        else:
            if response.status < 500:
                return
            failure = f"{step.service} answered {response.status}"
        if step.on_error == "fail":
            raise CallFailed(failure)


def import_app(reference: str) -> Any:
    """Import the ASGI app ``module:attribute`` (from the working directory, as hypercorn does)."""
    module_name, _, attribute = reference.partition(":")
    if "" not in sys.path:
        sys.path.insert(0, "")  # `python -m` puts the working directory first; keep it there
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


def main(argv: list[str] | None = None) -> None:
    """Serve one replica: ``python -m harness.services EXPERIMENT --service S --replica I ...``."""
    from harness.experiment import load_experiment

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("experiment", help="the experiment file as run (experiment.yaml)")
    parser.add_argument("--service", required=True)
    parser.add_argument("--replica", type=int, required=True)
    parser.add_argument("--listen", required=True, help="host:port to serve on")
    parser.add_argument("--outbound", required=True, help="host:port of the outbound sidecar")
    args = parser.parse_args(argv)
    experiment = load_experiment(args.experiment)
    spec = experiment.service(args.service)
    app: Any
    if spec.app is not None:
        app = import_app(spec.app)
    else:
        host, _, port = args.outbound.rpartition(":")
        app = SyntheticService(
            spec,
            rng=random.Random(f"{experiment.seed}:{args.service}:{args.replica}"),
            network=TcpNetwork(),
            outbound=Endpoint(host, int(port)),
            sleep=precise_sleep(precise_sleepers()),
        )
    trio.run(_serve_with_hypercorn, app, args.listen)


async def _serve_with_hypercorn(app: Any, listen: str) -> None:
    config = Config()
    config.bind = [listen]
    config.accesslog = None
    config.errorlog = "-"
    config.graceful_timeout = 1.0
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        stop = trio.Event()

        async def wait_for_signal() -> None:
            async for _ in signals:
                stop.set()
                return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_for_signal)
            await serve(app, config, shutdown_trigger=stop.wait)
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    main()
