"""The data that flows through a sidecar: requests and responses, frozen.

Header names are lower-case ``str`` (h11 lower-cases them on the wire side); values are
``str`` decoded as Latin-1, which round-trips any byte. A layer that changes a request makes a
new one with :meth:`Request.replace` or :meth:`Request.with_header`; nothing is mutated, so a
retry can resend exactly what the first try sent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from meshcore.identity import PeerIdentity

if TYPE_CHECKING:
    from meshcore.trace import RequestTrace

__all__ = ["Endpoint", "Headers", "PeerIdentity", "Request", "Response"]

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One upstream address: ``host:port`` on 127.0.0.1 (or a name on the memory network)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _get(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _set(headers: Headers, name: str, value: str) -> Headers:
    return (*((k, v) for k, v in headers if k != name), (name, value))


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request, plus the routing facts the mesh layers add on the way down.

    ``destination`` is the destination service (set by the route layer, or by the inbound
    stack to its own workload); ``endpoint`` the upstream host chosen for this try (set by the
    balancer); ``attempt`` counts tries, 1 for the first; ``subset`` is the subset of the
    destination's endpoints the route chose (empty: all); ``trace`` collects the decision trace
    (:mod:`meshcore.trace`) and takes no part in equality; ``peer`` is the verified mTLS
    identity of the connection the request arrived on (``None`` for plain text).
    """

    method: str
    target: str
    headers: Headers = ()
    body: bytes = b""
    destination: str = ""
    endpoint: Endpoint | None = None
    attempt: int = 1
    subset: str = ""
    trace: RequestTrace | None = field(default=None, compare=False, repr=False)
    peer: PeerIdentity | None = None

    @property
    def path(self) -> str:
        """Return the target without its query string."""
        return self.target.partition("?")[0]

    @property
    def host(self) -> str:
        """Return the Host header without its port (``payments:8080`` gives ``payments``)."""
        host = _get(self.headers, "host") or ""
        name, colon, port = host.rpartition(":")
        return name if colon and port.isdigit() else host

    def header(self, name: str) -> str | None:
        """Return the first value of header ``name`` (lower-case), or ``None``."""
        return _get(self.headers, name)

    def with_header(self, name: str, value: str) -> Request:
        """Return a copy whose header ``name`` has exactly the one value ``value``."""
        return dataclasses.replace(self, headers=_set(self.headers, name, value))

    def replace(self, **changes: object) -> Request:
        """Return a copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP response, plus what the mesh knows about how it came to be.

    ``flags`` are Envoy response flags (``UF``, ``UO``, ``DI``, ``FI``, ...); ``upstream`` is
    the ``host:port`` that answered, empty when the mesh answered by itself; ``details`` is
    Envoy's response code details when the mesh knows more than the flag says
    (``rbac_access_denied_matched_policy[...]``, a TLS failure's reason).
    """

    status: int
    headers: Headers = ()
    body: bytes = b""
    flags: tuple[str, ...] = ()
    upstream: str = ""
    details: str = ""

    def header(self, name: str) -> str | None:
        """Return the first value of header ``name`` (lower-case), or ``None``."""
        return _get(self.headers, name)

    def with_flag(self, flag: str) -> Response:
        """Return a copy with Envoy response flag ``flag`` added."""
        if flag in self.flags:
            return self
        return dataclasses.replace(self, flags=(*self.flags, flag))

    def replace(self, **changes: object) -> Response:
        """Return a copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def local(cls, status: int, text: str, flag: str = "") -> Response:
        """Return a response the mesh answers by itself (plain text, optional flag)."""
        return cls(
            status,
            headers=(("content-type", "text/plain"), ("server", "meshchaos")),
            body=text.encode(),
            flags=(flag,) if flag else (),
        )
