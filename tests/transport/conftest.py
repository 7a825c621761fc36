"""The ``codec`` fixture: server-loop and client tests run against both HTTP/1.1 codecs."""

from __future__ import annotations

import pytest
from http_codecs import CODECS, Codec


@pytest.fixture(params=sorted(CODECS))
def codec(request: pytest.FixtureRequest) -> Codec:
    """Each codec in turn."""
    return CODECS[request.param]
