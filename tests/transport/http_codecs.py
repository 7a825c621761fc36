"""The two HTTP/1.1 codecs side by side, for tests that run against both."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import trio

from meshcore.transport import http1, llhttp
from meshcore.transport.codec import HttpConnection, ServeHttp


@dataclass(frozen=True)
class Codec:
    """One codec's server loop and client connection."""

    serve: ServeHttp
    client: Callable[[trio.abc.Stream], HttpConnection]


CODECS = {
    "h11": Codec(http1.serve_http, http1.ClientConnection),
    "llhttp": Codec(llhttp.serve_http, llhttp.LlhttpClientConnection),
}
