"""The mesh certificate authority: a root CA and SPIFFE workload certificates.

Certificates are signed with ``cryptography`` (trustme cannot write URI SANs). Keys are ECDSA
P-256: a TLS 1.3 handshake with them costs a fraction of an RSA-2048 one, which matters
because every new pooled connection between sidecars pays for one.

A workload certificate has an empty subject and one critical URI SAN, the SPIFFE ID, as
Istio's do. Its lifetime is Istio's 24 h by default, and a sidecar replaces it at half its
lifetime (:func:`rotation_due`). Validity dates are wall-clock dates, because OpenSSL checks
them against the system clock: :func:`wall_clock` is the one place meshcore reads it, and only
to stamp certificates; every schedule (rotation included) runs on ``trio.current_time()``.

On disk (``meshchaos ca init`` / ``ca issue``, DESIGN.md 4.1): ``DIR/ca-cert.pem`` and
``DIR/ca-key.pem`` for the CA, ``PREFIX-cert.pem`` and ``PREFIX-key.pem`` for a workload.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshcore.identity import SPIFFE_SCHEME

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "CLOCK_SKEW_S",
    "DEFAULT_CERT_LIFETIME_S",
    "CertificateAuthority",
    "WorkloadCertificate",
    "rotation_due",
    "wall_clock",
    "write_workload",
]

CA_CERT_FILE = "ca-cert.pem"
CA_KEY_FILE = "ca-key.pem"
DEFAULT_CERT_LIFETIME_S = 24 * 3600.0  # Istio's workload certificate TTL
CA_LIFETIME_S = 10 * 365 * 24 * 3600.0  # Istio's self-signed root: 10 years
# Certificates start this much before they are issued, so that a peer whose clock is a little
# behind does not see a certificate "not yet valid" (Istio backdates the same way).
CLOCK_SKEW_S = 60.0


def wall_clock() -> dt.datetime:
    """Return the current UTC date, for certificate validity and nothing else."""
    return dt.datetime.now(dt.UTC)


def rotation_due(issued_at_s: float, lifetime_s: float) -> float:
    """Return when a certificate issued at ``issued_at_s`` is replaced: half its lifetime."""
    return issued_at_s + lifetime_s / 2


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class WorkloadCertificate:
    """A workload's certificate and key (PEM), with the facts a sidecar schedules by."""

    spiffe_id: str
    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes  # the root that signed it, which peers must trust
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int


class CertificateAuthority:
    """A self-signed root that signs workload certificates."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self._cert = cert
        self._key = key

    @classmethod
    def create(
        cls,
        *,
        now: dt.datetime | None = None,
        common_name: str = "meshchaos mesh CA",
        lifetime_s: float = CA_LIFETIME_S,
    ) -> CertificateAuthority:
        """Make a new root CA (a fresh key, a self-signed certificate)."""
        now = now or wall_clock()
        key = _new_key()
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(seconds=CLOCK_SKEW_S))
            .not_valid_after(now + dt.timedelta(seconds=lifetime_s))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, folder: Path) -> CertificateAuthority:
        """Read the CA that ``meshchaos ca init`` wrote into ``folder`` (OSError, ValueError)."""
        cert = x509.load_pem_x509_certificate((folder / CA_CERT_FILE).read_bytes())
        key = serialization.load_pem_private_key((folder / CA_KEY_FILE).read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{folder / CA_KEY_FILE}: expected an EC private key")
        return cls(cert, key)

    def save(self, folder: Path) -> None:
        """Write ``ca-cert.pem`` and ``ca-key.pem`` (readable by the owner only) into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CA_CERT_FILE).write_bytes(self.cert_pem)
        _write_private(folder / CA_KEY_FILE, _key_pem(self._key))

    @property
    def cert_pem(self) -> bytes:
        """Return the root certificate (PEM), which every peer trusts."""
        return _cert_pem(self._cert)

    def issue(
        self,
        spiffe: str,
        *,
        now: dt.datetime | None = None,
        lifetime_s: float = DEFAULT_CERT_LIFETIME_S,
    ) -> WorkloadCertificate:
        """Sign a new workload certificate, with a fresh key, for the SPIFFE ID ``spiffe``.

        ``now`` is the issue date (the wall clock by default); a ``now`` in the past makes a
        certificate that has already expired, which is what the ``certExpired`` fault needs.
        """
        if not spiffe.startswith(SPIFFE_SCHEME):
            raise ValueError(f"expected a SPIFFE ID (spiffe://...), got {spiffe!r}")
        if lifetime_s <= 0:
            raise ValueError(f"a certificate lifetime must be positive, got {lifetime_s}")
        now = now or wall_clock()
        key = _new_key()
        not_before = now - dt.timedelta(seconds=CLOCK_SKEW_S)
        not_after = now + dt.timedelta(seconds=lifetime_s)
        serial = x509.random_serial_number()
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self._cert.subject)
            .public_key(public)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            # An empty subject makes the SAN the only name, so it must be critical (RFC 5280).
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe)]),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return WorkloadCertificate(
            spiffe_id=spiffe,
            cert_pem=_cert_pem(cert),
            key_pem=_key_pem(key),
            ca_pem=self.cert_pem,
            not_before=not_before,
            not_after=not_after,
            serial=serial,
        )


def write_workload(prefix: Path, certificate: WorkloadCertificate) -> tuple[Path, Path]:
    """Write ``PREFIX-cert.pem`` and ``PREFIX-key.pem``; return their paths."""
    cert_path = prefix.with_name(f"{prefix.name}-cert.pem")
    key_path = prefix.with_name(f"{prefix.name}-key.pem")
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(certificate.cert_pem)
    _write_private(key_path, certificate.key_pem)
    return cert_path, key_path


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key so that only the owner can read it, from the first byte on."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
