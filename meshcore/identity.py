"""Workload identities: SPIFFE IDs as Istio writes them, and the peer of an mTLS connection.

A workload ``checkout`` in namespace ``default`` of trust domain ``cluster.local`` is
``spiffe://cluster.local/ns/default/sa/checkout`` (Istio names the service account after the
service). Istio's AuthorizationPolicy writes the same identity without the scheme, as a
*principal*: ``cluster.local/ns/default/sa/checkout``. This module is plain string work, so the
CA, the TLS transport and the sans-IO authorization policy share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_NAMESPACE",
    "SPIFFE_SCHEME",
    "TRUST_DOMAIN",
    "PeerIdentity",
    "principal_of",
    "spiffe_id",
    "workload_of",
]

TRUST_DOMAIN = "cluster.local"
DEFAULT_NAMESPACE = "default"
SPIFFE_SCHEME = "spiffe://"


def spiffe_id(service: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """Return the SPIFFE ID of ``service``'s workload (its service account is its name)."""
    return f"{SPIFFE_SCHEME}{TRUST_DOMAIN}/ns/{namespace}/sa/{service}"


def principal_of(name: str) -> str:
    """Return the Istio principal for a SPIFFE ID, a principal, or a plain service name.

    ``spiffe://cluster.local/ns/default/sa/a``, ``cluster.local/ns/default/sa/a`` and ``a`` all
    give ``cluster.local/ns/default/sa/a``; a ``*`` wildcard is kept as written.
    """
    if name.startswith(SPIFFE_SCHEME):
        return name.removeprefix(SPIFFE_SCHEME)
    if "/" in name or "*" in name:
        return name
    return spiffe_id(name).removeprefix(SPIFFE_SCHEME)


def workload_of(spiffe: str) -> str:
    """Return the service account of a SPIFFE ID (its last ``/sa/`` segment), else the ID."""
    _, marker, account = spiffe.rpartition("/sa/")
    return account if marker and account else spiffe


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """The other end of an mTLS connection, from its verified certificate.

    ``cert_sha256`` is the hex SHA-256 of the peer's DER certificate (the ``Hash`` of
    ``x-forwarded-client-cert``). ``principal`` is the identity as an AuthorizationPolicy
    principal (no ``spiffe://``), ``workload`` its workload (service account) name, for
    telemetry's ``source_workload``: both derived once, since a connection's identity is
    looked up once and read on every request it carries.
    """

    spiffe_id: str
    cert_sha256: str = ""
    principal: str = field(init=False, repr=False, compare=False)
    workload: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "principal", principal_of(self.spiffe_id))
        object.__setattr__(self, "workload", workload_of(self.spiffe_id))
