"""The destination policy model: Istio's fields and defaults, every problem at once."""

from __future__ import annotations

from typing import Any

import pytest

from meshcore.config import read_sidecar_config
from meshcore.destination import DestinationPolicy, policy_document, read_destination_policy
from meshcore.fields import ConfigError, FieldReader, Problem
from meshcore.policy.retry import ISTIO_DEFAULT_RETRY


def read(entry: dict[str, Any]) -> tuple[DestinationPolicy, list[Problem]]:
    problems: list[Problem] = []
    reader = FieldReader(entry, ("d",), problems)
    policy = read_destination_policy(reader, name="payments")
    reader.finish()
    return policy, problems


def messages(entry: dict[str, Any]) -> list[str]:
    return [f"{p.dotted_path()}: {p.message}" for p in read(entry)[1]]


FULL: dict[str, Any] = {
    "timeout": "1s",
    "retries": {
        "attempts": 3,
        "perTryTimeout": "200ms",
        "retryOn": "5xx,reset,409",
        "retriableStatusCodes": [429],
        "budget": {"percent": 25, "minRetryConcurrency": 5},
    },
    "connectionPool": {
        "tcp": {"maxConnections": 64},
        "http": {
            "http1MaxPendingRequests": 32,
            "http2MaxRequests": 128,
            "maxRetries": 8,
            "maxRequestsPerConnection": 10,
            "idleTimeout": "60s",
        },
    },
    "outlierDetection": {
        "consecutive5xxErrors": 7,
        "consecutiveGatewayErrors": 3,
        "interval": "5s",
        "baseEjectionTime": "15s",
        "maxEjectionPercent": 50,
    },
    "loadBalancer": {"simple": "PEAK_EWMA"},
    "failureAccrual": {"consecutiveFailures": 5, "minPenalty": "2s", "maxPenalty": "30s"},
    "subsets": [
        {"name": "v1", "labels": {"version": "v1"}},
        {"name": "v2", "labels": {"version": 2}},
    ],
    "http": [
        {
            "name": "canary",
            "match": [
                {
                    "uri": {"regex": "/api/.*"},
                    "method": {"exact": "GET"},
                    "headers": {"x-canary": {}, "x-no": {"present": False}, "x-u": {"prefix": "t"}},
                }
            ],
            "route": [
                {"destination": {"host": "payments", "subset": "v1"}, "weight": 90},
                {"destination": {"subset": "v2"}, "weight": 10},
            ],
            "mirror": {"host": "audit"},
            "mirrorPercentage": {"value": 5},
        }
    ],
}


def test_every_field_is_read() -> None:
    policy, problems = read(FULL)
    assert problems == []
    assert policy.timeout_s == 1.0
    retries = policy.retries
    assert (retries.attempts, retries.per_try_timeout_s) == (3, 0.2)
    assert retries.retry_on == {"5xx", "reset", "retriable-status-codes"}
    assert retries.retriable_status_codes == {409, 429}
    assert retries.budget is not None
    assert retries.budget.fraction == 0.25
    pool = policy.connection_pool
    assert (pool.max_connections, pool.http1_max_pending_requests, pool.http2_max_requests) == (
        64, 32, 128,
    )  # fmt: skip
    assert (pool.max_retries, pool.max_requests_per_connection, pool.idle_timeout_s) == (8, 10, 60)
    assert policy.outlier_detection is not None
    assert policy.outlier_detection.consecutive_gateway_errors == 3
    assert policy.failure_accrual is not None
    assert policy.failure_accrual.min_penalty_s == 2.0
    assert policy.subsets == {"v1": {"version": "v1"}, "v2": {"version": "2"}}
    [route] = policy.http
    assert [t.subset for t in route.targets] == ["v1", "v2"]
    assert route.mirror is not None
    assert (route.mirror.host, route.mirror.fraction) == (
        "audit",
        0.05,
    )
    assert policy.mirror_hosts() == ("audit",)


def test_the_document_round_trips() -> None:
    policy, _ = read(FULL)
    again, problems = read(policy_document(policy))
    assert problems == []
    assert again == policy
    default, _ = read({})
    assert read(policy_document(default)) == (default, [])
    slow, _ = read({"timeout": "2h", "connectionPool": {"http": {"idleTimeout": "250us"}}})
    assert read(policy_document(slow)) == (slow, [])


def test_istio_defaults() -> None:
    policy, _ = read({})
    assert policy == DestinationPolicy()
    assert policy.retries == ISTIO_DEFAULT_RETRY
    assert policy.timeout_s is None
    assert policy.outlier_detection is None
    assert policy.connection_pool.max_connections is None
    assert read({"outlierDetection": {}})[0].outlier_detection is not None
    zero, _ = read({"connectionPool": {"tcp": {"maxConnections": 0}}, "timeout": "0s"})
    assert zero.connection_pool.max_connections is None
    assert zero.timeout_s is None


def test_a_retries_block_without_attempts_disables_with_a_warning() -> None:
    policy, problems = read({"retries": {"retryOn": "5xx"}})
    assert policy.retries.attempts == 0
    assert [p.severity for p in problems] == ["warning"]


def test_mistakes_are_all_reported_with_their_path() -> None:
    assert messages(
        {
            "retries": {"attempts": 2, "retryOn": "5xx,sometimes", "retriableStatusCodes": [700]},
            "connectionPool": {"http": {"idleTimeout": "0s"}},
            "failureAccrual": {"minPenalty": "2s", "maxPenalty": "1s", "jitterRatio": 2},
            "subsets": [{"name": "a"}, {"name": "a"}],
            "http": [
                {
                    "route": [
                        {"destination": {"subset": "zz"}, "weight": 60},
                        {"destination": {"host": "other"}, "weight": 30},
                    ],
                    "match": [
                        {"uri": {"exact": "/", "prefix": "/"}},
                        {"method": {}},
                        {"uri": {"regex": "("}},
                    ],
                    "mirrorPercentage": {"value": 5},
                },
            ],
        }
    ) == [
        "d.retries.retryOn: retryOn: unknown retryOn condition 'sometimes'; known: 5xx, "
        "cancelled, connect-failure, deadline-exceeded, gateway-error, internal, refused-stream, "
        "reset, resource-exhausted, retriable-4xx, retriable-status-codes, unavailable, "
        "or a status",
        "d.retries.retriableStatusCodes: retriableStatusCodes: expected a list of HTTP status "
        "codes, got [700]",
        "d.connectionPool.http.idleTimeout: idleTimeout: must be longer than 0, got '0s'",
        "d.failureAccrual.jitterRatio: jitterRatio: expected a number between 0 and 1, got 2",
        "d.failureAccrual.maxPenalty: maxPenalty: must be at least minPenalty",
        "d.subsets[1].name: a second subset called 'a'",
        "d.http[0].match[0].uri: only one of exact, prefix or regex, got exact, prefix",
        "d.http[0].match[1].method: method: expected one of exact, prefix or regex",
        "d.http[0].match[2].uri.regex: regex: bad regular expression '(': missing ), "
        "unterminated subpattern at position 0",
        "d.http[0].route[0].destination.subset: subset: no subset called 'zz' in subsets",
        "d.http[0].route[1].destination.host: host: a route of 'payments' can only send to "
        "'payments'",
        "d.http[0].route: route weights must add up to 100, as in Istio",
        "d.http[0].mirrorPercentage: mirrorPercentage needs a mirror",
    ]


def test_sidecar_endpoints_with_labels_and_mirror_hosts() -> None:
    config = read_sidecar_config(
        {
            "name": "a",
            "destinations": {
                "b": {
                    "endpoints": ["b:1", {"address": "b:2", "labels": {"version": "v2"}}],
                    "http": [{"mirror": {"host": "c"}}],
                },
                "c": {"endpoints": ["c:1"]},
            },
        }
    )
    assert config.endpoint_labels == {"b:2": {"version": "v2"}}
    with pytest.raises(ConfigError, match="mirror host 'zz' is not a destination"):
        read_sidecar_config(
            {"name": "a", "destinations": {"b": {"http": [{"mirror": {"host": "zz"}}]}}}
        )
