"""The traffic policy of one destination service, in Istio's shape, and its reader.

One ``destinations.<service>`` entry (in a sidecar config and in an experiment's
``spec.mesh.destinations``) merges what Istio splits between a ``VirtualService`` (``timeout``,
``retries``, ``http`` routes with match, weighted subsets and mirror) and a ``DestinationRule``
(``connectionPool``, ``outlierDetection``, ``loadBalancer``, ``subsets``), plus two
extensions: ``retries.budget`` (Envoy's retry budget) and ``failureAccrual`` (Linkerd's
consecutive-failures breaker). Defaults are Istio's; docs/sidecar.md lists every field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshcore.fields import FieldReader, int_at_least, one_of, string
from meshcore.policy.accrual import FailureAccrualSettings
from meshcore.policy.balancer import LOAD_BALANCERS
from meshcore.policy.limits import ConnectionPoolSettings
from meshcore.policy.outlier import OutlierSettings
from meshcore.policy.retry import (
    ISTIO_DEFAULT_RETRY,
    RETRY_ON_TOKENS,
    RetryBudget,
    RetryPolicy,
)
from meshcore.policy.routing import (
    HeaderMatch,
    HttpRoute,
    Mirror,
    RouteMatch,
    StringMatch,
    WeightedTarget,
)
from meshcore.units import parse_duration, parse_percent

__all__ = [
    "DestinationPolicy",
    "header_document",
    "policy_document",
    "read_destination_policy",
    "read_header_matches",
]


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """Traffic policy for one destination service (VirtualService + DestinationRule)."""

    load_balancer: str = "LEAST_REQUEST"  # Istio's default since 1.14
    timeout_s: float | None = None  # Istio: no route timeout unless set
    retries: RetryPolicy = ISTIO_DEFAULT_RETRY
    connection_pool: ConnectionPoolSettings = field(default_factory=ConnectionPoolSettings)
    outlier_detection: OutlierSettings | None = None  # off unless configured (Istio)
    failure_accrual: FailureAccrualSettings | None = None  # extension (Linkerd)
    subsets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    http: tuple[HttpRoute, ...] = ()

    def mirror_hosts(self) -> tuple[str, ...]:
        """Return every other destination the routes mirror to."""
        return tuple(sorted({r.mirror.host for r in self.http if r.mirror is not None}))


def read_destination_policy(reader: FieldReader, *, name: str = "") -> DestinationPolicy:
    """Read the policy fields of one ``destinations`` entry (the caller finishes the reader).

    ``name`` is the destination's own service name; a route or mirror ``host`` must be it (or,
    for a mirror, another destination).
    """
    balancer = reader.child("loadBalancer")
    simple = balancer.take("simple", one_of(*LOAD_BALANCERS), default="LEAST_REQUEST")
    balancer.finish()
    timeout_s = reader.take("timeout", parse_duration, default=0.0) or None
    retries = _read_retries(reader) if reader.has("retries") else ISTIO_DEFAULT_RETRY
    pool = _read_connection_pool(reader.child("connectionPool"))
    outlier = (
        _read_outlier(reader.child("outlierDetection")) if reader.has("outlierDetection") else None
    )
    accrual = (
        _read_accrual(reader.child("failureAccrual")) if reader.has("failureAccrual") else None
    )
    subsets = _read_subsets(reader)
    routes = tuple(
        _read_route(FieldReader(item, path, reader.problems), name, subsets)
        for path, item in reader.items("http")
    )
    return DestinationPolicy(
        load_balancer=simple,
        timeout_s=timeout_s,
        retries=retries,
        connection_pool=pool,
        outlier_detection=outlier,
        failure_accrual=accrual,
        subsets=subsets,
        http=routes,
    )


# --- retries ---------------------------------------------------------------------------------


def _read_retries(reader: FieldReader) -> RetryPolicy:
    fields = reader.child("retries")
    if not fields.has("attempts"):
        fields.problem(
            (),
            "retries without attempts disables retries, as in Istio; "
            "write attempts: N (retries after the first try)",
            "warning",
        )
    attempts = fields.take("attempts", int_at_least(0), default=0)
    per_try = fields.take("perTryTimeout", parse_duration, default=0.0) or None
    default = ISTIO_DEFAULT_RETRY
    tokens: frozenset[str] = default.retry_on
    codes: frozenset[int] = default.retriable_status_codes
    if fields.has("retryOn"):
        no_codes: frozenset[int] = frozenset()
        tokens, codes = fields.take("retryOn", _retry_on, default=(tokens, no_codes))
    if fields.has("retriableStatusCodes"):
        listed: frozenset[int] = fields.take(
            "retriableStatusCodes", _status_codes, default=frozenset()
        )
        codes = codes | listed if fields.has("retryOn") else listed
        tokens = tokens | {"retriable-status-codes"}
    budget = None
    if fields.has("budget"):
        spec = fields.child("budget")
        budget = RetryBudget(
            fraction=spec.take("percent", parse_percent, default=0.20),
            min_retry_concurrency=spec.take("minRetryConcurrency", int_at_least(0), default=3),
        )
        spec.finish()
    fields.finish()
    return RetryPolicy(attempts, per_try, frozenset(tokens), frozenset(codes), budget)


def _retry_on(value: object) -> tuple[frozenset[str], frozenset[int]]:
    """Parse Istio's ``retryOn``: comma-separated Envoy tokens and HTTP status codes."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a comma-separated list such as '5xx,reset', got {value!r}")
    tokens: set[str] = set()
    codes: set[int] = set()
    for token in (t.strip() for t in value.split(",")):
        if token.isdigit() and 100 <= int(token) <= 599:
            codes.add(int(token))
            tokens.add("retriable-status-codes")  # Istio's translation of a bare code
        elif token in RETRY_ON_TOKENS:
            tokens.add(token)
        else:
            known = ", ".join(sorted(RETRY_ON_TOKENS))
            raise ValueError(f"unknown retryOn condition {token!r}; known: {known}, or a status")
    return frozenset(tokens), frozenset(codes)


def _status_codes(value: object) -> frozenset[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in value
    ):
        raise ValueError(f"expected a list of HTTP status codes, got {value!r}")
    return frozenset(value)


# --- connection pool, outlier detection, failure accrual -------------------------------------


def _unlimited_when_zero(value: object) -> int | None:
    """Istio's int32 limits: 0 (or absent) means the default, unlimited."""
    number = int_at_least(0)(value)
    return number or None


def _read_connection_pool(reader: FieldReader) -> ConnectionPoolSettings:
    tcp = reader.child("tcp")
    max_connections = tcp.take("maxConnections", _unlimited_when_zero, default=None)
    tcp.finish()
    http = reader.child("http")
    settings = ConnectionPoolSettings(
        max_connections=max_connections,
        http1_max_pending_requests=http.take(
            "http1MaxPendingRequests", _unlimited_when_zero, default=None
        ),
        http2_max_requests=http.take("http2MaxRequests", _unlimited_when_zero, default=None),
        max_retries=http.take("maxRetries", _unlimited_when_zero, default=None),
        max_requests_per_connection=http.take(
            "maxRequestsPerConnection", _unlimited_when_zero, default=None
        ),
        idle_timeout_s=http.take("idleTimeout", _positive_duration, default=3600.0),
    )
    http.finish()
    reader.finish()
    return settings


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be longer than 0, got {value!r}")
    return seconds


def _read_outlier(reader: FieldReader) -> OutlierSettings:
    settings = OutlierSettings(
        consecutive_5xx_errors=reader.take("consecutive5xxErrors", int_at_least(0), default=5),
        consecutive_gateway_errors=reader.take(
            "consecutiveGatewayErrors", int_at_least(0), default=0
        ),
        interval_s=reader.take("interval", _positive_duration, default=10.0),
        base_ejection_time_s=reader.take("baseEjectionTime", _positive_duration, default=30.0),
        max_ejection_percent=100 * reader.take("maxEjectionPercent", parse_percent, default=0.10),
    )
    reader.finish()
    return settings


def _read_accrual(reader: FieldReader) -> FailureAccrualSettings:
    settings = FailureAccrualSettings(
        consecutive_failures=reader.take("consecutiveFailures", int_at_least(1), default=7),
        min_penalty_s=reader.take("minPenalty", _positive_duration, default=1.0),
        max_penalty_s=reader.take("maxPenalty", _positive_duration, default=60.0),
        jitter=reader.take("jitterRatio", _ratio, default=0.5),
    )
    if settings.max_penalty_s < settings.min_penalty_s:
        reader.problem(("maxPenalty",), "maxPenalty: must be at least minPenalty")
    reader.finish()
    return settings


def _ratio(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"expected a number between 0 and 1, got {value!r}")
    return float(value)


# --- subsets and routes ----------------------------------------------------------------------


def _read_subsets(reader: FieldReader) -> dict[str, Mapping[str, str]]:
    subsets: dict[str, Mapping[str, str]] = {}
    for path, item in reader.items("subsets"):
        fields = FieldReader(item, path, reader.problems)
        name = fields.take("name", string)
        labels = _string_map(fields, "labels")
        fields.finish()
        if name in subsets:
            fields.problem(("name",), f"a second subset called {name!r}")
        elif name is not None:
            subsets[name] = labels
    return subsets


def _string_map(reader: FieldReader, key: str) -> dict[str, str]:
    mapping = reader.child(key)
    return {name: mapping.take(name, _label_value) for name in mapping.names()}


def _label_value(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a string, got {value!r}")
    return str(value)


def _read_route(
    reader: FieldReader, destination: str, subsets: Mapping[str, Mapping[str, str]]
) -> HttpRoute:
    matches = tuple(
        _read_match(FieldReader(item, path, reader.problems))
        for path, item in reader.items("match")
    )
    targets: list[WeightedTarget] = []
    for path, item in reader.items("route"):
        entry = FieldReader(item, path, reader.problems)
        _, subset = _read_destination_ref(entry.child("destination"), destination, subsets, False)
        weight = entry.take("weight", int_at_least(0), default=100 if not targets else 0)
        entry.finish()
        targets.append(WeightedTarget(subset, weight))
    if not targets:
        targets.append(WeightedTarget())
    elif len(targets) > 1 and sum(t.weight for t in targets) != 100:
        reader.problem(("route",), "route weights must add up to 100, as in Istio")
    mirror = None
    if reader.has("mirror"):
        host, subset = _read_destination_ref(reader.child("mirror"), destination, subsets, True)
        percentage = reader.child("mirrorPercentage")
        fraction = percentage.take("value", parse_percent, default=1.0)
        percentage.finish()
        mirror = Mirror(host, subset, fraction)
    elif reader.has("mirrorPercentage"):
        reader.problem(("mirrorPercentage",), "mirrorPercentage needs a mirror")
    name = reader.take("name", string, default="")
    reader.finish()
    return HttpRoute(matches, tuple(targets), mirror, name)


def _read_destination_ref(
    reader: FieldReader,
    destination: str,
    subsets: Mapping[str, Mapping[str, str]],
    other_hosts: bool,
) -> tuple[str, str]:
    """Read ``{host, subset}``; ``host`` defaults to this destination."""
    host = reader.take("host", string, default=destination)
    subset = reader.take("subset", string, default="")
    if host != destination and destination and not other_hosts:
        reader.problem(
            ("host",), f"host: a route of {destination!r} can only send to {destination!r}"
        )
    if subset and host == destination and subset not in subsets:
        reader.problem(("subset",), f"subset: no subset called {subset!r} in subsets")
    reader.finish()
    return host, subset


def _read_match(reader: FieldReader) -> RouteMatch:
    uri = _read_string_match(reader, "uri")
    method = _read_string_match(reader, "method")
    match = RouteMatch(uri, method, read_header_matches(reader, "headers"))
    reader.finish()
    return match


def _read_string_match(reader: FieldReader, key: str) -> StringMatch | None:
    if not reader.has(key):
        return None
    fields = reader.child(key)
    if not any(fields.has(kind) for kind in ("exact", "prefix", "regex")):
        reader.problem((key,), f"{key}: expected one of exact, prefix or regex")
    match = _string_match(fields)
    fields.finish()
    return match


def _string_match(fields: FieldReader) -> StringMatch | None:
    present = [kind for kind in ("exact", "prefix", "regex") if fields.has(kind)]
    if len(present) > 1:
        fields.problem((), f"only one of exact, prefix or regex, got {', '.join(present)}")
    if not present:
        return None
    kind = present[0]
    return fields.take(kind, _matcher(kind), default=None)


def _matcher(kind: str) -> Callable[[object], StringMatch]:
    def convert(value: object) -> StringMatch:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        try:
            return StringMatch(kind, value)
        except Exception as error:  # re.error: a bad pattern
            raise ValueError(f"bad regular expression {value!r}: {error}") from error

    return convert


def read_header_matches(reader: FieldReader, key: str) -> tuple[HeaderMatch, ...]:
    """Read Istio's ``headers: {NAME: {exact|prefix|regex: V}}``; ``{}`` checks presence.

    ``{present: false}`` (an extension) matches requests without the header.
    """
    table = reader.child(key)
    conditions = []
    for name in table.names():
        fields = table.child(name)
        present = fields.take("present", _boolean, default=True)
        match = _string_match(fields)
        fields.finish()
        conditions.append(HeaderMatch(name.lower(), match, present))
    return tuple(conditions)


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def policy_document(policy: DestinationPolicy) -> dict[str, Any]:
    """Return ``policy`` as a ``destinations`` entry (Istio's field names), defaults resolved.

    The harness writes sidecar configs with it, so every field an experiment sets reaches the
    sidecar; ``read_destination_policy`` of the result gives ``policy`` back.
    """
    retries = policy.retries
    document: dict[str, Any] = {"loadBalancer": {"simple": policy.load_balancer}}
    if policy.timeout_s is not None:
        document["timeout"] = _duration(policy.timeout_s)
    retry: dict[str, Any] = {"attempts": retries.attempts}
    if retries.per_try_timeout_s is not None:
        retry["perTryTimeout"] = _duration(retries.per_try_timeout_s)
    retry["retryOn"] = ",".join(sorted(retries.retry_on))
    retry["retriableStatusCodes"] = sorted(retries.retriable_status_codes)
    if retries.budget is not None:
        retry["budget"] = {
            "percent": retries.budget.fraction * 100,
            "minRetryConcurrency": retries.budget.min_retry_concurrency,
        }
    document["retries"] = retry
    pool = policy.connection_pool
    http = {
        "http1MaxPendingRequests": pool.http1_max_pending_requests,
        "http2MaxRequests": pool.http2_max_requests,
        "maxRetries": pool.max_retries,
        "maxRequestsPerConnection": pool.max_requests_per_connection,
    }
    document["connectionPool"] = {
        "tcp": {"maxConnections": pool.max_connections or 0},
        "http": {
            **{key: value or 0 for key, value in http.items()},
            "idleTimeout": _duration(pool.idle_timeout_s),
        },
    }
    if policy.outlier_detection is not None:
        outlier = policy.outlier_detection
        document["outlierDetection"] = {
            "consecutive5xxErrors": outlier.consecutive_5xx_errors,
            "consecutiveGatewayErrors": outlier.consecutive_gateway_errors,
            "interval": _duration(outlier.interval_s),
            "baseEjectionTime": _duration(outlier.base_ejection_time_s),
            "maxEjectionPercent": outlier.max_ejection_percent,
        }
    if policy.failure_accrual is not None:
        accrual = policy.failure_accrual
        document["failureAccrual"] = {
            "consecutiveFailures": accrual.consecutive_failures,
            "minPenalty": _duration(accrual.min_penalty_s),
            "maxPenalty": _duration(accrual.max_penalty_s),
            "jitterRatio": accrual.jitter,
        }
    if policy.subsets:
        document["subsets"] = [
            {"name": name, "labels": dict(labels)} for name, labels in policy.subsets.items()
        ]
    if policy.http:
        document["http"] = [_route_document(route) for route in policy.http]
    return document


def _duration(seconds: float) -> str:
    """Write seconds as milliseconds without exponent (``3600000ms``, ``200ms``, ``0.5ms``)."""
    return format(seconds * 1000, "f").rstrip("0").rstrip(".") + "ms"


def _route_document(route: HttpRoute) -> dict[str, Any]:
    document: dict[str, Any] = {}
    if route.name:
        document["name"] = route.name
    if route.matches:
        document["match"] = [_match_document(m) for m in route.matches]
    document["route"] = [
        {"destination": {"subset": t.subset} if t.subset else {}, "weight": t.weight}
        for t in route.targets
    ]
    if route.mirror is not None:
        mirror = route.mirror
        document["mirror"] = {"host": mirror.host}
        if mirror.subset:
            document["mirror"]["subset"] = mirror.subset
        document["mirrorPercentage"] = {"value": mirror.fraction * 100}
    return document


def _match_document(match: RouteMatch) -> dict[str, Any]:
    document: dict[str, Any] = {}
    if match.uri is not None:
        document["uri"] = {match.uri.kind: match.uri.value}
    if match.method is not None:
        document["method"] = {match.method.kind: match.method.value}
    if match.headers:
        document["headers"] = header_document(match.headers)
    return document


def header_document(headers: tuple[HeaderMatch, ...]) -> dict[str, Any]:
    """Return header conditions in the shape :func:`read_header_matches` reads."""
    document: dict[str, Any] = {}
    for condition in headers:
        entry: dict[str, Any] = {} if condition.present else {"present": False}
        if condition.value is not None:
            entry[condition.value.kind] = condition.value.value
        document[condition.name] = entry
    return document
