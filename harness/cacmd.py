"""``meshchaos ca init DIR`` and ``meshchaos ca issue DIR --spiffe ID --out PREFIX``.

The mesh certificate authority for standalone sidecars (DESIGN.md 4.1). ``init`` writes
``DIR/ca-cert.pem`` and ``DIR/ca-key.pem`` (and refuses to overwrite an existing CA, whose
certificates would all stop verifying); ``issue`` writes ``PREFIX-cert.pem`` and
``PREFIX-key.pem``, a workload certificate whose URI SAN is the SPIFFE ID, for clients such as
``curl``, ``openssl s_client`` or Python's ``ssl`` that talk to a STRICT sidecar. Sidecars issue
their own certificates from the CA folder. Exit codes: 0, or 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meshcore.ca import (
    CA_CERT_FILE,
    CA_KEY_FILE,
    DEFAULT_CERT_LIFETIME_S,
    CertificateAuthority,
    write_workload,
)
from meshcore.units import UnitError, format_duration, parse_duration

__all__ = ["add_arguments", "run_command"]

EXIT_OK, EXIT_INVALID = 0, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``init`` and ``issue`` subcommands to the ``ca`` parser."""
    actions = parser.add_subparsers(dest="ca_command", required=True)
    init = actions.add_parser("init", help="create a mesh CA in DIR (ca-cert.pem, ca-key.pem)")
    init.add_argument("dir", type=Path)
    issue = actions.add_parser("issue", help="issue a workload certificate from the CA in DIR")
    issue.add_argument("dir", type=Path)
    issue.add_argument("--spiffe", required=True, help="spiffe://cluster.local/ns/NS/sa/NAME")
    issue.add_argument("--out", required=True, type=Path, help="writes PREFIX-cert.pem, -key.pem")
    issue.add_argument(
        "--lifetime",
        default=format_duration(DEFAULT_CERT_LIFETIME_S),
        help="validity, e.g. 24h (default) or 90s",
    )


def run_command(args: argparse.Namespace) -> int:
    """Run ``ca init`` or ``ca issue``; return the exit code."""
    if args.ca_command == "init":
        return _init(args.dir)
    return _issue(args.dir, args.spiffe, args.out, args.lifetime)


def _init(folder: Path) -> int:
    existing = [folder / name for name in (CA_CERT_FILE, CA_KEY_FILE) if (folder / name).exists()]
    if existing:
        print(f"{existing[0]}: already exists; not replacing a mesh CA", file=sys.stderr)
        return EXIT_INVALID
    try:
        CertificateAuthority.create().save(folder)
    except OSError as error:
        print(f"{folder}: {error.strerror}", file=sys.stderr)
        return EXIT_INVALID
    print(f"wrote {folder / CA_CERT_FILE} and {folder / CA_KEY_FILE}")
    return EXIT_OK


def _issue(folder: Path, spiffe: str, prefix: Path, lifetime: str) -> int:
    try:
        lifetime_s = parse_duration(lifetime)
        authority = CertificateAuthority.load(folder)
        certificate = authority.issue(spiffe, lifetime_s=lifetime_s)
        cert_path, key_path = write_workload(prefix, certificate)
    except OSError as error:
        print(f"{error.filename or folder}: {error.strerror}", file=sys.stderr)
        return EXIT_INVALID
    except (UnitError, ValueError) as error:
        print(f"meshchaos ca issue: {error}", file=sys.stderr)
        return EXIT_INVALID
    print(f"wrote {cert_path} and {key_path} for {spiffe}")
    return EXIT_OK
