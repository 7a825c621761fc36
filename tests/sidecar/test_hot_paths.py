"""The shortcuts of the per-request path give exactly what the plain code gave."""

from __future__ import annotations

import dataclasses
import random
import re
import uuid

import pytest

from meshcore.layers.fault import FaultTable
from meshcore.layers.retry import RetryLayer
from meshcore.layers.telemetry import SOURCE_HEADER, TelemetryLayer, _request_id
from meshcore.model import Endpoint, Request, Response
from meshcore.policy.budget import RetryAdmission
from meshcore.policy.faults import AbortFault, FaultRule
from meshcore.telemetry import RequestRecord, SidecarTelemetry


def test_request_ids_are_the_uuid4_text_of_the_same_draw() -> None:
    for seed in range(200):
        ours, reference = random.Random(seed), random.Random(seed)
        expected = str(uuid.UUID(int=reference.getrandbits(128), version=4))
        assert _request_id(ours) == expected


def test_replace_matches_dataclasses_replace() -> None:
    request = Request("GET", "/x", (("host", "a"),), b"body", "a", Endpoint("h", 1), 2, "v1")
    assert request.replace(destination="b", attempt=3, endpoint=None) == dataclasses.replace(
        request, destination="b", attempt=3, endpoint=None
    )
    assert request.replace() == request
    assert request.with_header("x", "1").headers == (("host", "a"), ("x", "1"))
    response = Response(200, body=b"ok", flags=("DI",))
    assert response.replace(upstream="h:1") == dataclasses.replace(response, upstream="h:1")
    assert response.with_flag("UF").flags == ("DI", "UF")
    with pytest.raises(TypeError, match="no field 'bogus'"):
        request.replace(bogus=1)


def test_fault_selections_follow_every_change_of_the_table() -> None:
    table = FaultTable()
    assert table.outbound("payments", "request") == ()
    rule = FaultRule(name="abort", destination="payments", level="request",
                     abort=AbortFault(503, 1.0))  # fmt: skip
    table.add(rule)
    assert table.outbound("payments", "request") == (rule,)
    assert table.outbound("payments", "attempt") == ()
    assert table.inbound() == ()
    assert table.connection_rules("payments") == ()
    table.remove("abort")
    assert table.outbound("payments", "request") == ()


def test_histograms_count_every_request_in_its_bucket() -> None:
    telemetry = SidecarTelemetry()
    for duration_s in (0.0005, 0.0004, 0.003, 5.0, 7200.0):
        telemetry.record(RequestRecord("source", "a", "b", 200, (), duration_s, 0, 10))
    text = telemetry.prometheus_text().decode()
    buckets = dict(re.findall(r'istio_request_duration_milliseconds_bucket\{[^}]*le="([^"]+)"'
                              r"[^}]*\} (\S+)", text))  # fmt: skip
    assert (buckets["0.5"], buckets["1.0"], buckets["5.0"], buckets["5000.0"]) == (
        "2.0", "2.0", "3.0", "4.0",
    )  # fmt: skip
    assert buckets["3.6e+06"] == "4.0"
    assert buckets["+Inf"] == "5.0"
    assert re.search(r"istio_request_duration_milliseconds_count\{[^}]*\} 5.0", text)
    assert re.search(r"istio_requests_total\{[^}]*response_code=\"200\"[^}]*\} 5.0", text)
    assert telemetry.counters["cluster.outbound|b.upstream_rq_2xx"] == 5


async def test_an_apps_source_and_attempt_headers_are_replaced_once() -> None:
    seen: list[Request] = []

    async def upstream(request: Request) -> Response:
        seen.append(request)
        return Response(200)

    retry = RetryLayer(upstream, {}, {"b": RetryAdmission()}, random.Random(0), lambda d, s: None)

    async def route(request: Request) -> Response:
        return await retry(request.replace(destination="b"))

    layer = TelemetryLayer(route, workload="a", reporter="source", telemetry=SidecarTelemetry(),
                           access_log=None, rng=random.Random(0))  # fmt: skip
    headers = (("host", "b"), (SOURCE_HEADER, "forged"), ("x-envoy-attempt-count", "9"),
               ("x-request-id", "id-1"), (SOURCE_HEADER, "again"))  # fmt: skip
    await layer(Request("GET", "/", headers))
    await layer(Request("GET", "/", (("host", "b"),)))
    assert seen[0].headers == (("host", "b"), ("x-request-id", "id-1"), (SOURCE_HEADER, "a"),
                               ("x-envoy-attempt-count", "1"))  # fmt: skip
    request_id = _request_id(random.Random(0))
    assert seen[1].headers == (("host", "b"), ("x-request-id", request_id), (SOURCE_HEADER, "a"),
                               ("x-envoy-attempt-count", "1"))  # fmt: skip


def test_series_of_flags_that_differ_only_in_order_stay_apart() -> None:
    telemetry = SidecarTelemetry()
    for flags in (("UF", "URX"), ("URX", "UF"), ("UF", "URX")):
        telemetry.record(RequestRecord("source", "a", "b", 503, flags, 0.001, 0, 0))
    text = telemetry.prometheus_text().decode()
    counts = dict(re.findall(r'istio_requests_total\{[^}]*response_flags="([^"]+)"[^}]*\} (\S+)',
                             text))  # fmt: skip
    assert counts == {"UF,URX": "2.0", "URX,UF": "1.0"}
    assert telemetry.counters["cluster.outbound|b.response_flags.UF"] == 3
