"""The exceptions of meshcore.

::

    MeshError                      anything the mesh core raises on purpose
    +-- UpstreamError              a try to an upstream failed below HTTP
    |   +-- ConnectFailure         no connection could be made     (Envoy: UF, connect-failure)
    |   |   +-- TlsFailure         the TLS handshake failed, or the server is not who we expected
    |   +-- UpstreamReset          the connection broke mid-exchange (Envoy: UC, reset)
    +-- ProtocolError              the peer spoke broken HTTP/1.1   (answered 400 / 431)

Transport code translates socket, TLS and h11 errors into these at the I/O boundary (as
httpcore's ``map_exceptions`` does), so layers above never see ``OSError`` or ``h11`` types.
"""

from __future__ import annotations

__all__ = [
    "ConnectFailure",
    "MeshError",
    "ProtocolError",
    "TlsFailure",
    "UpstreamError",
    "UpstreamReset",
]


class MeshError(Exception):
    """Base class of every error meshcore raises on purpose."""


class UpstreamError(MeshError):
    """A try to an upstream failed below HTTP: no response was received."""


class ConnectFailure(UpstreamError):
    """No connection to the upstream could be made (refused, unreachable)."""


class TlsFailure(ConnectFailure):
    """The TLS handshake with the upstream failed, or its SPIFFE ID is not the destination's.

    A connection failure like any other to retries and outlier detection (Envoy reports it as
    ``UF`` with a ``TLS_error`` reason).
    """


class UpstreamReset(UpstreamError):
    """The upstream connection was reset or closed before a complete response."""


class ProtocolError(MeshError):
    """The peer sent something that is not acceptable HTTP/1.1.

    ``status`` is what a server answers it with: 400, or 431 for an oversized header block.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
