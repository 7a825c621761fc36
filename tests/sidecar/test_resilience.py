"""The outbound resilience data plane of a whole sidecar, over the memory network, in virtual time.

Upstreams are programmable h11 servers; every assertion on time is exact.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from meshcore.config import read_sidecar_config
from meshcore.model import Endpoint, Request, Response
from meshcore.policy.retry import backoff_s
from meshcore.sidecar import Sidecar
from meshcore.transport.client import request_once
from meshcore.transport.http1 import serve_http
from meshcore.transport.memory import MemoryNetwork

Behaviour = Callable[[Request], Awaitable[Response]]
HOSTS = [Endpoint(f"b{i}", 80) for i in range(3)]


def ok(delay_s: float = 0.0) -> Behaviour:
    async def behave(request: Request) -> Response:
        await trio.sleep(delay_s)
        return Response(
            200,
            body=b"ok",
            headers=(("x-attempt", request.header("x-envoy-attempt-count") or "-"),),
        )

    return behave


def status(code: int) -> Behaviour:
    async def behave(request: Request) -> Response:
        return Response(code, body=b"no")

    return behave


async def hang(request: Request) -> Response:
    await trio.sleep_forever()
    raise AssertionError


class Mesh:
    """A sidecar ``client`` with destination ``backend`` over programmable upstreams."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.network = MemoryNetwork()
        self.nursery = nursery
        self.log: list[dict[str, Any]] = []
        self.seen: dict[Endpoint, list[Request]] = {}
        self.sidecar: Sidecar

    async def upstream(self, endpoint: Endpoint, behave: Behaviour) -> None:
        self.seen[endpoint] = []

        async def handler(request: Request) -> Response:
            self.seen[endpoint].append(request)
            return await behave(request)

        async def on_connection(stream: trio.abc.Stream) -> None:
            await serve_http(stream, handler)

        await self.nursery.start(self.network.serve, endpoint, on_connection)

    async def start(self, hosts: list[Endpoint], **policy: object) -> None:
        config = read_sidecar_config(
            {
                "name": "client",
                "admin": "client:15000",
                "outbound": {"listen": "client:15001"},
                "seed": 7,
                "destinations": {"backend": {"endpoints": [str(h) for h in hosts], **policy}},
            }
        )
        self.sidecar = Sidecar(config, self.network, access_log=self.log.append)
        await self.nursery.start(self.sidecar.run)

    async def call(
        self, *headers: tuple[str, str], method: str = "GET", path: str = "/"
    ) -> Response:
        request = Request(method, path, (("host", "backend"), *headers))
        return await request_once(self.network, Endpoint("client", 15001), request)

    def counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = self.sidecar.stats()["counters"]
        return {k.removeprefix("cluster.outbound|backend."): v for k, v in counters.items()}


@pytest.mark.parametrize("per_try", ["200ms", "300ms"])
async def test_route_timeout_covers_every_try_and_backoff(
    autojump_clock: trio.abc.Clock, per_try: str
) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        for host in HOSTS:
            await mesh.upstream(host, hang)
        retries = {"attempts": 3, "perTryTimeout": per_try, "retryOn": "5xx"}
        await mesh.start(HOSTS, timeout="1s", retries=retries)
        # The sidecar draws its back-offs from this RNG: replay it to know the instants.
        rng = random.Random("7:client:retry-backoff")
        backoffs = [backoff_s(n, rng) for n in (1, 2, 3)]
        tries_end = 4 * float(per_try.removesuffix("ms")) / 1000 + sum(backoffs)
        started = trio.current_time()
        response = await mesh.call()
        assert response.status == 504
        assert response.body == b"upstream request timeout\n"
        [entry] = mesh.log
        decisions = [a["decision"] for a in entry["attempts"]]
        assert decisions[0].startswith("retry: per-try timeout matched retryOn 5xx (back-off ")
        if tries_end < 1.0:  # the fourth try's per-try timeout ends it, retries used up
            assert trio.current_time() - started == pytest.approx(tries_end, abs=1e-9)
            assert entry["response_flags"] == "UT,URX"
        else:  # the route timeout cuts the last try or back-off
            assert trio.current_time() - started == pytest.approx(1.0, abs=1e-9)
            assert entry["response_flags"] == "UT"
            assert decisions[-1] == "no retry: route timeout 1s expired" or decisions[-1].endswith(
                "route timeout 1s expired during the back-off"
            )
            assert mesh.counters()["upstream_rq_timeout"] == 1
        assert len({a["host"] for a in entry["attempts"][:3]}) == 3  # never a host twice
        assert mesh.counters()["upstream_rq_per_try_timeout"] >= 3
        nursery.cancel_scope.cancel()


async def test_exact_instants_of_per_try_timeouts_without_route_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        for host in HOSTS:
            await mesh.upstream(host, hang)
        await mesh.start(
            HOSTS, retries={"attempts": 2, "perTryTimeout": "200ms", "retryOn": "reset"}
        )
        rng = random.Random("7:client:retry-backoff")
        expected = 3 * 0.2 + backoff_s(1, rng) + backoff_s(2, rng)
        started = trio.current_time()
        response = await mesh.call()
        assert trio.current_time() - started == pytest.approx(expected, abs=1e-9)
        assert (response.status, mesh.log[0]["response_flags"]) == (504, "UT,URX")
        assert mesh.log[0]["attempt_count"] == 3
        assert mesh.log[0]["attempts"][-1]["decision"] == (
            "no retry: per-try timeout matched retryOn reset, but all 2 retries are used"
        )
        nursery.cancel_scope.cancel()


async def test_istio_default_retries_a_503_on_another_host(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(HOSTS[0], status(503))
        await mesh.upstream(HOSTS[1], ok())
        await mesh.start(HOSTS[:2], loadBalancer={"simple": "ROUND_ROBIN"})
        for _ in range(4):
            response = await mesh.call()
            assert response.status == 200
        # Round robin sends each first try to b0; its 503 is retried on b1, a host not tried.
        assert [r.header("x-envoy-attempt-count") for r in mesh.seen[HOSTS[0]]] == ["1"] * 4
        assert [r.header("x-envoy-attempt-count") for r in mesh.seen[HOSTS[1]]] == ["2"] * 4
        assert [[a["host"] for a in e["attempts"]] for e in mesh.log] == [["b0:80", "b1:80"]] * 4
        assert mesh.log[0]["attempts"][0]["decision"].startswith(
            "retry: 503 matched retryOn retriable-status-codes"
        )
        assert mesh.counters()["upstream_rq_retry"] == 4
        assert mesh.counters()["upstream_rq_retry_success"] == 4
        nursery.cancel_scope.cancel()


async def test_a_500_is_not_retried_by_default_and_attempts_zero_disables(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(HOSTS[0], status(500))
        await mesh.upstream(HOSTS[1], status(503))
        await mesh.start(HOSTS[:2], loadBalancer={"simple": "ROUND_ROBIN"}, retries={"attempts": 0})
        assert (await mesh.call()).status == 500
        assert (await mesh.call()).status == 503
        assert [e["attempt_count"] for e in mesh.log] == [1, 1]
        assert mesh.log[1]["attempts"][0]["decision"] == "no retry: retries disabled (attempts: 0)"
        nursery.cancel_scope.cancel()


async def test_budget_refusal_ends_with_urx(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(HOSTS[0], status(503))
        budget = {"percent": 0, "minRetryConcurrency": 0}
        await mesh.start(HOSTS[:1], retries={"attempts": 2, "retryOn": "5xx", "budget": budget})
        response = await mesh.call()
        assert response.status == 503
        assert mesh.log[0]["response_flags"] == "URX"
        assert mesh.log[0]["attempts"][0]["decision"] == "no retry: budget exhausted"
        assert mesh.counters()["upstream_rq_retry_overflow"] == 1
        nursery.cancel_scope.cancel()


async def test_pool_overflow_is_503_uo_at_once_and_never_retried(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(HOSTS[0], ok(0.1))
        pool = {"tcp": {"maxConnections": 1}, "http": {"http1MaxPendingRequests": 1}}
        await mesh.start(HOSTS[:1], connectionPool=pool, retries={"attempts": 2, "retryOn": "5xx"})
        finished: list[tuple[int, float]] = []

        async def one() -> None:
            response = await mesh.call()
            finished.append((response.status, trio.current_time()))

        start = trio.current_time()
        async with trio.open_nursery() as calls:
            for _ in range(3):
                calls.start_soon(one)
        assert sorted((s, round(t - start, 9)) for s, t in finished) == [
            (200, 0.1), (200, 0.2), (503, 0.0),
        ]  # fmt: skip
        overflowed = next(e for e in mesh.log if e["response_code"] == 503)
        assert overflowed["response_flags"] == "UO"
        assert overflowed["attempts"][0]["decision"] == "no retry: overflow is never retried"
        counters = mesh.counters()
        assert (counters["upstream_rq_pending_overflow"], counters["upstream_cx_overflow"]) == (
            1,
            2,
        )
        assert counters.get("upstream_rq_retry", 0) == 0
        nursery.cancel_scope.cancel()


async def test_outlier_detection_ejects_and_returns_the_host(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(HOSTS[0], status(500))
        await mesh.upstream(HOSTS[1], ok())
        outlier = {"consecutive5xxErrors": 2, "maxEjectionPercent": 50}
        await mesh.start(
            HOSTS[:2],
            outlierDetection=outlier,
            retries={"attempts": 0},
            loadBalancer={"simple": "ROUND_ROBIN"},
        )
        statuses = [(await mesh.call()).status for _ in range(4)]
        assert statuses == [500, 200, 500, 200]  # the second 500 ejects b0
        assert mesh.counters()["outlier_detection.ejections_active"] == 1
        assert [(await mesh.call()).status for _ in range(4)] == [200] * 4
        assert mesh.log[-1]["attempts"][0]["skipped"] == ["host skipped: b0:80 ejected until 30.0s"]
        # Ejected at 0 s for 30 s; the sweeps run every 10 s, so b0 is back from the one at 30 s.
        await trio.sleep(29.9 - trio.current_time())
        assert mesh.counters()["outlier_detection.ejections_active"] == 1
        await trio.sleep(0.1)
        assert mesh.counters()["outlier_detection.ejections_active"] == 0
        assert mesh.counters()["outlier_detection.ejections_total"] == 1
        nursery.cancel_scope.cancel()


async def test_every_host_ejected_is_503_uh(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(HOSTS[0], status(502))
        # maxEjectionPercent 10 of one host is 0 hosts, but one host may always be ejected.
        await mesh.start(HOSTS[:1], outlierDetection={"consecutiveGatewayErrors": 1})
        assert (await mesh.call()).status == 502
        response = await mesh.call()
        assert (response.status, mesh.log[-1]["response_flags"]) == (503, "UH")
        nursery.cancel_scope.cancel()


async def test_connect_failures_retry_elsewhere_and_count_for_ejection(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(HOSTS[1], ok())  # HOSTS[0] has no listener: connection refused
        await mesh.start(
            HOSTS[:2],
            loadBalancer={"simple": "ROUND_ROBIN"},
            outlierDetection={"consecutive5xxErrors": 1, "maxEjectionPercent": 50},
        )
        assert (await mesh.call()).status == 200
        first = mesh.log[0]["attempts"]
        assert first[0]["outcome"] == "connect failure (503 UF)"
        assert first[0]["decision"].startswith(
            "retry: connect failure matched retryOn connect-failure"
        )
        assert mesh.counters()["outlier_detection.ejections_active"] == 1
        nursery.cancel_scope.cancel()


async def test_routes_match_weigh_subsets_and_answer_nr(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        for host in HOSTS:
            await mesh.upstream(host, ok())
        config = read_sidecar_config(
            {
                "name": "client",
                "admin": "client:15000",
                "outbound": {"listen": "client:15001"},
                "destinations": {
                    "backend": {
                        "endpoints": [
                            {"address": "b0:80", "labels": {"version": "v1"}},
                            {"address": "b1:80", "labels": {"version": "v1"}},
                            {"address": "b2:80", "labels": {"version": "v2"}},
                        ],
                        "subsets": [
                            {"name": "v1", "labels": {"version": "v1"}},
                            {"name": "v2", "labels": {"version": "v2"}},
                        ],
                        "http": [
                            {
                                "match": [{"headers": {"x-canary": {"exact": "yes"}}}],
                                "route": [{"destination": {"subset": "v2"}}],
                            },
                            {
                                "match": [{"uri": {"prefix": "/api"}, "method": {"exact": "GET"}}],
                                "route": [
                                    {"destination": {"subset": "v1"}, "weight": 80},
                                    {"destination": {"subset": "v2"}, "weight": 20},
                                ],
                                "mirror": {"subset": "v2"},
                                "mirrorPercentage": {"value": 50},
                            },
                        ],
                    }
                },
            }
        )
        mesh.sidecar = Sidecar(config, mesh.network, access_log=mesh.log.append)
        await nursery.start(mesh.sidecar.run)
        for _ in range(5):
            assert (await mesh.call(("x-canary", "yes"), path="/x")).status == 200
        assert len(mesh.seen[HOSTS[2]]) == 5
        assert (await mesh.call(path="/other")).status == 404
        assert mesh.log[-1]["response_flags"] == "NR"
        assert (await mesh.call(method="POST", path="/api")).status == 404
        for _ in range(1000):
            assert (await mesh.call(path="/api/items")).status == 200
        await trio.sleep(1)  # mirrored copies are fire and forget
        shadows = [r for r in mesh.seen[HOSTS[2]] if r.header("host") == "backend-shadow"]
        primary_v2 = [r for r in mesh.seen[HOSTS[2]][5:] if r.header("host") == "backend"]
        primary_v1 = len(mesh.seen[HOSTS[0]]) + len(mesh.seen[HOSTS[1]])
        assert 430 < len(shadows) < 570
        assert 150 < len(primary_v2) < 250
        assert primary_v1 + len(primary_v2) == 1000
        nursery.cancel_scope.cancel()


async def test_header_matched_request_fault_is_not_retried(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(HOSTS[0], ok())
        await mesh.start(HOSTS[:1], retries={"attempts": 2, "retryOn": "5xx"})
        fault = {
            "name": "tester",
            "destination": "backend",
            "level": "request",
            "abort": {"httpStatus": 503},
            "headers": {"x-user": {"prefix": "test"}},
        }
        added = await request_once(
            mesh.network,
            Endpoint("client", 15000),
            Request("POST", "/faults", body=json.dumps(fault).encode()),
        )
        assert added.status == 201
        assert (await mesh.call(("x-user", "tester-1"))).status == 503
        assert mesh.log[-1]["response_flags"] == "FI"
        assert mesh.log[-1]["attempt_count"] == 0  # Istio's fault filter: before the router
        assert (await mesh.call(("x-user", "alice"))).status == 200
        assert mesh.counters()["fault.aborts_injected"] == 1
        nursery.cancel_scope.cancel()


async def test_attempt_level_fault_is_retried(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(HOSTS[0], ok())
        await mesh.start(HOSTS[:1], retries={"attempts": 5, "retryOn": "5xx"})
        fault = {
            "name": "flaky",
            "destination": "backend",
            "abort": {"httpStatus": 503, "percent": 50},
        }
        await request_once(
            mesh.network,
            Endpoint("client", 15000),
            Request("POST", "/faults", body=json.dumps(fault).encode()),
        )
        statuses = [(await mesh.call()).status for _ in range(50)]
        assert statuses.count(200) >= 48  # 6 tries at 50 % each: a failure is rare
        assert mesh.counters()["upstream_rq_retry"] > 10
        nursery.cancel_scope.cancel()


async def test_failure_accrual_opens_and_probes(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(HOSTS[0], status(500))
        accrual = {
            "consecutiveFailures": 3,
            "minPenalty": "1s",
            "maxPenalty": "4s",
            "jitterRatio": 0,
        }
        await mesh.start(HOSTS[:1], failureAccrual=accrual, retries={"attempts": 0})
        assert [(await mesh.call()).status for _ in range(4)] == [500, 500, 500, 503]
        assert mesh.counters()["failure_accrual.b0:80.state"] == 2  # open
        assert mesh.log[-1]["attempts"][0]["skipped"] == [
            "host skipped: b0:80 breaker open until 1.0s"
        ]
        await trio.sleep(1)
        assert (await mesh.call()).status == 500  # the probe fails: open again for 2 s
        assert (await mesh.call()).status == 503
        await trio.sleep(2)
        assert (await mesh.call()).status == 500
        nursery.cancel_scope.cancel()


async def test_max_requests_per_connection_and_metrics(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(HOSTS[0], ok())
        await mesh.start(HOSTS[:1], connectionPool={"http": {"maxRequestsPerConnection": 2}})
        for _ in range(5):
            await mesh.call()
        assert mesh.counters()["upstream_cx_total"] == 3
        metrics = await request_once(
            mesh.network, Endpoint("client", 15000), Request("GET", "/metrics")
        )
        assert b'meshchaos_upstream_rq_total{cluster_name="outbound|backend"} 5.0' in metrics.body
        assert b"meshchaos_upstream_rq_retry_active" in metrics.body
        nursery.cancel_scope.cancel()


async def test_peak_ewma_prefers_the_fast_host(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(HOSTS[0], ok(0.200))
        await mesh.upstream(HOSTS[1], ok(0.005))
        await mesh.start(HOSTS[:2], loadBalancer={"simple": "PEAK_EWMA"})
        for _ in range(100):
            await mesh.call()
        assert len(mesh.seen[HOSTS[1]]) > 90
        nursery.cancel_scope.cancel()


async def test_drain_waits_for_requests_in_flight(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        mesh = Mesh(nursery)
        await mesh.upstream(HOSTS[0], ok(2.0))
        await mesh.start(HOSTS[:1])
        nursery.start_soon(mesh.call)
        await trio.sleep(0.5)
        started = trio.current_time()
        await mesh.sidecar.drain()
        assert trio.current_time() - started == pytest.approx(1.5, abs=1e-9)
        await mesh.upstream(HOSTS[1], hang)
        nursery.cancel_scope.cancel()
