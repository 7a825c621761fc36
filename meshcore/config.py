"""Sidecar and destination configuration: frozen, validated once, with Istio's defaults.

Field names are Istio's (camelCase) in the files and snake_case with units in the name here.
Every ``read_*`` function takes a :class:`~meshcore.fields.FieldReader`, so a mistake anywhere is
reported with its path, and every problem of a file at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshcore.ca import DEFAULT_CERT_LIFETIME_S
from meshcore.destination import DestinationPolicy, read_destination_policy, read_header_matches
from meshcore.fields import (
    ConfigError,
    FieldReader,
    Problem,
    int_at_least,
    one_of,
    string,
)
from meshcore.identity import principal_of
from meshcore.model import Endpoint
from meshcore.policy.authz import ACTIONS, AuthorizationRule, HeaderCondition
from meshcore.policy.balancer import LOAD_BALANCERS
from meshcore.policy.faults import AbortFault, DelayFault, FaultRule
from meshcore.toxic_config import CERTIFICATE_FAULTS, read_certificate_fault, read_toxic
from meshcore.units import parse_duration, parse_percent

__all__ = [
    "LOAD_BALANCERS",
    "MTLS_MODES",
    "DestinationPolicy",
    "Endpoint",
    "SidecarConfig",
    "parse_address",
    "read_authorization_rule",
    "read_destination_policy",
    "read_fault_rule",
    "read_sidecar_config",
]

MTLS_MODES = ("STRICT", "PERMISSIVE", "DISABLE")


def parse_address(value: object) -> Endpoint:
    """Parse ``"127.0.0.1:8080"`` into an :class:`Endpoint`."""
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(f"expected an address host:port, got {value!r}")
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ValueError(f"expected an address host:port, got {value!r}")
    return Endpoint(host, int(port))


def read_fault_rule(reader: FieldReader, *, name: str, destination: str | None) -> FaultRule:
    """Read a runtime fault: ``delay``/``abort``, or one connection-level fault.

    Connection-level: ``toxic``, ``partition``, ``certExpired``, ``wrongIdentity``,
    ``untrustedCa`` (see :mod:`meshcore.toxic_config`). Delay and abort have Istio's
    HTTPFaultInjection shape:

    ``delay: {fixed: 200ms, jitter: 50ms, percent: 50}``, ``abort: {httpStatus: 503, percent: 10}``;
    ``percent`` defaults to 100. ``level`` is ``attempt`` (default) or ``request``.
    ``headers`` (Istio's ``match.headers`` shape) limits the fault to requests that match.
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
    connection = _read_connection_fault(reader)
    kinds = [k for k in ("delay", "abort") if reader.has(k)]
    kinds += [connection.get("certificate") or k for k in connection if k != "impersonates"]
    kinds = list(dict.fromkeys(kinds))
    if not kinds:
        reader.problem((), "a fault needs a delay, an abort, a toxic, a partition or a "
                           f"certificate fault ({', '.join(CERTIFICATE_FAULTS)})")  # fmt: skip
    elif connection and len(kinds) > 1:
        reader.problem((), f"a fault has one kind, and this one has {' and '.join(kinds)}")
    level = reader.take("level", one_of("attempt", "request"), default="attempt")
    headers = read_header_matches(reader, "headers")
    return FaultRule(
        name=name, delay=delay, abort=abort, destination=destination, level=level,
        headers=headers, **connection,
    )  # fmt: skip


def _read_connection_fault(reader: FieldReader) -> dict[str, Any]:
    """Read a toxic (either spelling), a partition or a certificate fault, if the fault has one.

    Toxiproxy's spelling (``type``, ``stream``, ``toxicity``, ``attributes``) may stand at the
    top of the fault, as in Toxiproxy's API.
    """
    found: dict[str, Any] = {}
    if reader.has("toxic"):
        fields = reader.child("toxic")
        found["toxic"] = read_toxic(fields)
        fields.finish()
    elif reader.has("type"):
        found["toxic"] = read_toxic(reader)
    if reader.has("partition"):
        fields = reader.child("partition")
        fields.finish()
        found["partition"] = True
    for kind in CERTIFICATE_FAULTS:
        if reader.has(kind):
            fields = reader.child(kind)
            found["impersonates"] = read_certificate_fault(fields, kind)
            found["certificate"] = kind
            fields.finish()
    return found


def _http_status(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise ValueError(f"expected an HTTP status between 200 and 599, got {value!r}")
    return value


_HEADER_KEY = re.compile(r"^request\.headers\[([^\]]+)\]$")


def read_authorization_rule(reader: FieldReader, *, name: str) -> AuthorizationRule:
    """Read the fields of one AuthorizationPolicy rule (the caller finishes the reader).

    ``action``, ``from`` (principals: SPIFFE IDs, ``cluster.local/ns/NS/sa/SA`` or service
    names), ``methods``, ``paths`` and ``when`` (``[{key: request.headers[NAME], values,
    notValues}]``); ``name`` is reported in denials unless the rule names itself.
    """

    def strings(key: str) -> tuple[str, ...]:
        values = []
        for path, item in reader.items(key):
            if isinstance(item, str) and item:
                values.append(item)
            else:
                reader.problems.append(Problem(path, f"{key}: expected a non-empty string"))
        return tuple(values)

    conditions = []
    for path, item in reader.items("when"):
        fields = FieldReader(item, path, reader.problems)
        key = fields.take("key", string)
        match = _HEADER_KEY.match(key or "")
        if key is not None and match is None:
            fields.problem(("key",), f"key: expected request.headers[NAME], got {key!r}")
        values = tuple(_strings_of(fields, "values"))
        not_values = tuple(_strings_of(fields, "notValues"))
        fields.finish()
        if match is not None:
            conditions.append(HeaderCondition(match.group(1).lower(), values, not_values))
    return AuthorizationRule(
        action=reader.take("action", one_of(*ACTIONS), default="ALLOW"),
        name=reader.take("name", string, default=name),
        principals=tuple(principal_of(p) for p in strings("from")),
        methods=strings("methods"),
        paths=strings("paths"),
        when=tuple(conditions),
    )


def _strings_of(reader: FieldReader, key: str) -> list[str]:
    values = []
    for path, item in reader.items(key):
        if isinstance(item, str):
            values.append(item)
        else:
            reader.problems.append(Problem(path, f"{key}: expected a string, got {item!r}"))
    return values


@dataclass(frozen=True, slots=True)
class SidecarConfig:
    """Everything one sidecar needs: who it is, where it listens, where it sends."""

    name: str
    admin: Endpoint
    outbound_listen: Endpoint | None = None
    inbound_listen: Endpoint | None = None
    inbound_app: Endpoint | None = None
    mtls_mode: str = "DISABLE"
    mtls_ca: str | None = None  # the folder `meshchaos ca init` wrote
    cert_lifetime_s: float = DEFAULT_CERT_LIFETIME_S
    authorization: tuple[AuthorizationRule, ...] = ()
    destinations: Mapping[str, tuple[Endpoint, ...]] = field(default_factory=dict)
    policies: Mapping[str, DestinationPolicy] = field(default_factory=dict)
    seed: int = 0
    # Labels of endpoints written {address, labels}: what DestinationRule subsets select.
    endpoint_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # by host:port

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
    mtls_ca = mtls.take("ca", string, default=None)
    cert_lifetime_s = mtls.take("certLifetime", parse_duration, default=DEFAULT_CERT_LIFETIME_S)
    if mtls_mode != "DISABLE" and mtls_ca is None:
        mtls.problem(("ca",), f"ca: required with mode {mtls_mode} (a `meshchaos ca init` folder)")
    if cert_lifetime_s <= 0:
        mtls.problem(("certLifetime",), "certLifetime: must be positive")
    mtls.finish()
    authorization = tuple(
        _authorization_rule(FieldReader(item, path, problems), index)
        for index, (path, item) in enumerate(reader.items("authorization"))
    )
    seed = reader.take("seed", int_at_least(0), default=0)
    destinations: dict[str, tuple[Endpoint, ...]] = {}
    policies: dict[str, DestinationPolicy] = {}
    labels: dict[str, Mapping[str, str]] = {}
    table = reader.child("destinations")
    for service in table.names():
        entry = table.child(service)
        endpoints = tuple(
            _take_item(entry, path, item, labels) for path, item in entry.items("endpoints")
        )
        destinations[service] = tuple(e for e in endpoints if e is not None)
        policies[service] = read_destination_policy(entry, name=service)
        entry.finish()
    for service, policy in policies.items():
        for host in policy.mirror_hosts():
            if host not in destinations:
                table.problem((service, "http"), f"mirror host {host!r} is not a destination")
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
        mtls_ca=mtls_ca,
        cert_lifetime_s=cert_lifetime_s,
        authorization=authorization,
        destinations=destinations,
        policies=policies,
        seed=seed,
        endpoint_labels=labels,
    )


def _authorization_rule(reader: FieldReader, index: int) -> AuthorizationRule:
    rule = read_authorization_rule(reader, name=f"authorization[{index}]")
    reader.finish()
    return rule


def _take_item(
    reader: FieldReader,
    path: tuple[str | int, ...],
    item: object,
    labels: dict[str, Mapping[str, str]],
) -> Endpoint | None:
    """Read one endpoint: ``host:port``, or ``{address: host:port, labels: {...}}``."""
    if isinstance(item, dict):
        fields = FieldReader(item, path, reader.problems)
        endpoint = fields.take("address", parse_address)
        table = fields.child("labels")
        found = {key: table.take(key, string) for key in table.names()}
        fields.finish()
        if endpoint is not None:
            labels[str(endpoint)] = found
        return endpoint
    try:
        return parse_address(item)
    except ValueError as error:
        reader.problems.append(Problem(path, str(error)))
        return None
