"""The data that flows through a sidecar: requests and responses, frozen.

Header names are lower-case ``str`` (h11 lower-cases them on the wire side); values are
``str`` decoded as Latin-1, which round-trips any byte. A layer that changes a request makes a
new one with :meth:`Request.replace` or :meth:`Request.with_header`; nothing is mutated, so a
retry can resend exactly what the first try sent.

Copies are made by the functions :func:`_copier` writes, not ``dataclasses.replace``: a request
is copied a few times per hop, and ``dataclasses.replace`` (keyword arguments through
``__init__``) cost several times as much.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from meshcore.identity import PeerIdentity

if TYPE_CHECKING:
    from meshcore.trace import RequestTrace

__all__ = ["Endpoint", "Headers", "PeerIdentity", "Request", "Response"]

Headers = tuple[tuple[str, str], ...]

_T = TypeVar("_T")


def _copier(cls: type[_T]) -> Callable[[_T, dict[str, Any]], _T]:
    """Return ``copy(obj, changes)``: a copy of ``obj`` (a ``cls``) with ``changes`` applied.

    What ``dataclasses.replace`` does for these classes (none has ``__post_init__`` or an
    ``init=False`` field), without its per-call reflection: like the ``__init__`` that
    ``dataclasses`` writes, the function is generated once, one line per field, setting each
    through its slot descriptor (a loop over the descriptors cost twice as much). An unknown
    field name raises TypeError, as there.
    """
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    known = frozenset(names)
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_known": known,
                             "_unknown": _unknown}  # fmt: skip
    lines = ["def copy(obj, changes):", "    if not changes.keys() <= _known:",
             "        _unknown(_cls, changes)", "    new = _new(_cls)"]  # fmt: skip
    for i, name in enumerate(names):
        scope[f"_set{i}"] = vars(cls)[name].__set__
        lines.append(f"    _set{i}(new, changes[{name!r}] if {name!r} in changes else obj.{name})")
    lines.append("    return new")
    exec("\n".join(lines), scope)  # generated from the class's own field names
    copy: Callable[[_T, dict[str, Any]], _T] = scope["copy"]
    return copy


def _unknown(cls: type, changes: dict[str, Any]) -> None:
    name = next(n for n in changes if n not in {f.name for f in dataclasses.fields(cls)})
    raise TypeError(f"{cls.__name__} has no field {name!r}")


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
        return _copy_request(self, {"headers": _set(self.headers, name, value)})

    def replace(self, **changes: Any) -> Request:
        """Return a copy with ``changes`` applied (as ``dataclasses.replace``)."""
        return _copy_request(self, changes)


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
        return _copy_response(self, {"flags": (*self.flags, flag)})

    def replace(self, **changes: Any) -> Response:
        """Return a copy with ``changes`` applied (as ``dataclasses.replace``)."""
        return _copy_response(self, changes)

    @classmethod
    def local(cls, status: int, text: str, flag: str = "") -> Response:
        """Return a response the mesh answers by itself (plain text, optional flag)."""
        return cls(
            status,
            headers=(("content-type", "text/plain"), ("server", "meshchaos")),
            body=text.encode(),
            flags=(flag,) if flag else (),
        )


_copy_request = _copier(Request)
_copy_response = _copier(Response)
