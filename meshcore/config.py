"""Sidecar and destination configuration: frozen, validated once, with Istio's defaults.

Field names are Istio's (camelCase) in the files and snake_case with units in the name here.
Every ``read_*`` function takes a :class:`~meshcore.fields.FieldReader`, so a mistake anywhere is
reported with its path, and every problem of a file at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from meshcore.fields import (
    ConfigError,
    FieldReader,
    Problem,
    int_at_least,
    one_of,
    string,
)
from meshcore.model import Endpoint
from meshcore.policy.faults import AbortFault, DelayFault, FaultRule
from meshcore.units import parse_duration, parse_percent

__all__ = [
    "LOAD_BALANCERS",
    "MTLS_MODES",
    "DestinationPolicy",
    "Endpoint",
    "SidecarConfig",
    "parse_address",
    "read_destination_policy",
    "read_fault_rule",
    "read_sidecar_config",
]

LOAD_BALANCERS = ("LEAST_REQUEST", "ROUND_ROBIN", "RANDOM")
MTLS_MODES = ("STRICT", "PERMISSIVE", "DISABLE")


def parse_address(value: object) -> Endpoint:
    """Parse ``"127.0.0.1:8080"`` into an :class:`Endpoint`."""
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(f"expected an address host:port, got {value!r}")
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ValueError(f"expected an address host:port, got {value!r}")
    return Endpoint(host, int(port))


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """Traffic policy for one destination service (VirtualService + DestinationRule)."""

    load_balancer: str = "LEAST_REQUEST"  # Istio's default since 1.14


def read_destination_policy(reader: FieldReader) -> DestinationPolicy:
    """Read the policy fields of one ``destinations`` entry (the caller finishes the reader)."""
    balancer = reader.child("loadBalancer")
    simple = balancer.take("simple", one_of(*LOAD_BALANCERS), default="LEAST_REQUEST")
    balancer.finish()
    return DestinationPolicy(load_balancer=simple)


def read_fault_rule(reader: FieldReader, *, name: str, destination: str | None) -> FaultRule:
    """Read the ``delay`` and ``abort`` fields of a fault (Istio's HTTPFaultInjection shape).

    ``delay: {fixed: 200ms, jitter: 50ms, percent: 50}``, ``abort: {httpStatus: 503, percent: 10}``;
    ``percent`` defaults to 100. ``level`` is ``attempt`` (default) or ``request``.
    """
    delay = abort = None
    if reader.has("delay"):
        fields = reader.child("delay")
        delay = DelayFault(
            fixed_s=fields.take("fixed", parse_duration),
            jitter_s=fields.take("jitter", parse_duration, default=0.0),
            fraction=fields.take("percent", parse_percent, default=1.0),
        )
        fields.finish()
    if reader.has("abort"):
        fields = reader.child("abort")
        abort = AbortFault(
            http_status=fields.take("httpStatus", _http_status),
            fraction=fields.take("percent", parse_percent, default=1.0),
        )
        fields.finish()
    if delay is None and abort is None:
        reader.problem((), "a mesh fault needs a delay or an abort")
    level = reader.take("level", one_of("attempt", "request"), default="attempt")
    return FaultRule(name=name, delay=delay, abort=abort, destination=destination, level=level)


def _http_status(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise ValueError(f"expected an HTTP status between 200 and 599, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class SidecarConfig:
    """Everything one sidecar needs: who it is, where it listens, where it sends."""

    name: str
    admin: Endpoint
    outbound_listen: Endpoint | None = None
    inbound_listen: Endpoint | None = None
    inbound_app: Endpoint | None = None
    mtls_mode: str = "DISABLE"
    destinations: Mapping[str, tuple[Endpoint, ...]] = field(default_factory=dict)
    policies: Mapping[str, DestinationPolicy] = field(default_factory=dict)
    seed: int = 0

    def policy(self, destination: str) -> DestinationPolicy:
        """Return the policy of ``destination`` (Istio's defaults when it sets none)."""
        return self.policies.get(destination, DEFAULT_POLICY)


DEFAULT_POLICY = DestinationPolicy()


def read_sidecar_config(document: object) -> SidecarConfig:
    """Build a :class:`SidecarConfig` from the YAML of DESIGN.md 4.5; raise ConfigError."""
    problems: list[Problem] = []
    reader = FieldReader(document, (), problems)
    name = reader.take("name", string)
    admin = reader.take("admin", parse_address, default=Endpoint("127.0.0.1", 15000))
    outbound = reader.child("outbound")
    outbound_listen = outbound.take("listen", parse_address, default=None)
    outbound.finish()
    inbound_listen = inbound_app = None
    if reader.has("inbound"):
        inbound = reader.child("inbound")
        inbound_listen = inbound.take("listen", parse_address)
        inbound_app = inbound.take("app", parse_address)
        inbound.finish()
    mtls = reader.child("mtls")
    mtls_mode = mtls.take("mode", one_of(*MTLS_MODES), default="DISABLE")
    mtls.finish()
    seed = reader.take("seed", int_at_least(0), default=0)
    destinations: dict[str, tuple[Endpoint, ...]] = {}
    policies: dict[str, DestinationPolicy] = {}
    table = reader.child("destinations")
    for service in table.names():
        entry = table.child(service)
        endpoints = tuple(_take_item(entry, path, item) for path, item in entry.items("endpoints"))
        destinations[service] = tuple(e for e in endpoints if e is not None)
        policies[service] = read_destination_policy(entry)
        entry.finish()
    reader.finish()
    if any(p.severity == "error" for p in problems):
        raise ConfigError(problems)
    return SidecarConfig(
        name=name,
        admin=admin,
        outbound_listen=outbound_listen,
        inbound_listen=inbound_listen,
        inbound_app=inbound_app,
        mtls_mode=mtls_mode,
        destinations=destinations,
        policies=policies,
        seed=seed,
    )


def _take_item(reader: FieldReader, path: tuple[str | int, ...], item: object) -> Endpoint | None:
    try:
        return parse_address(item)
    except ValueError as error:
        reader.problems.append(Problem(path, str(error)))
        return None
