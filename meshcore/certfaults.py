"""The security faults: certificates a misbehaving replica presents instead of its own.

- ``certExpired``: a certificate from the mesh CA for the right identity, whose validity ended
  before now (issued two lifetimes ago).
- ``wrongIdentity``: a valid mesh certificate for another service's SPIFFE ID.
- ``untrustedCa``: a certificate for the right identity, signed by a foreign CA that no peer
  trusts.

In every case the sidecar keeps trusting the mesh CA (``ca_pem`` stays the mesh's), so only
what it *presents* is wrong, and peers refuse it in the TLS handshake (STRICT mTLS).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from meshcore.ca import CertificateAuthority, WorkloadCertificate, wall_clock
from meshcore.identity import spiffe_id

__all__ = ["fault_certificate"]


def fault_certificate(
    authority: CertificateAuthority,
    kind: str | None,
    spiffe: str,
    *,
    lifetime_s: float,
    impersonates: str | None = None,
) -> WorkloadCertificate:
    """Return the certificate a sidecar presents under the security fault ``kind`` (or none)."""
    if kind == "certExpired":
        issued = wall_clock() - dt.timedelta(seconds=2 * lifetime_s)
        return authority.issue(spiffe, now=issued, lifetime_s=lifetime_s)
    if kind == "wrongIdentity":
        return authority.issue(spiffe_id(impersonates or "impostor"), lifetime_s=lifetime_s)
    if kind == "untrustedCa":
        foreign = CertificateAuthority.create(common_name="meshchaos foreign CA")
        certificate = foreign.issue(spiffe, lifetime_s=lifetime_s)
        return dataclasses.replace(certificate, ca_pem=authority.cert_pem)
    if kind is not None:
        raise ValueError(f"unknown certificate fault {kind!r}")
    return authority.issue(spiffe, lifetime_s=lifetime_s)
