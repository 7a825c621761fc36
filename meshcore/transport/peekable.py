"""The one protocol a stream implements to be looked at without being read.

It lives apart from :mod:`meshcore.transport.network` so that the stream classes that
implement it (the lean TCP stream, the in-memory pipe, the TLS and fault wrappers) and the
network module that uses them import it without importing each other.
"""

from __future__ import annotations

import abc

__all__ = ["PeekableStream"]


class PeekableStream(abc.ABC):
    """A stream that can tell, without reading, whether something waits to be read.

    The TCP stream, the in-memory network's streams and the connection-fault wrapper implement
    it; :func:`meshcore.transport.network.readable_now` looks through TLS streams to theirs.
    """

    __slots__ = ()

    @abc.abstractmethod
    def readable_now(self) -> bool:
        """Tell whether a read would return at once: bytes, end-of-stream, or an error."""
