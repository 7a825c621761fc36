"""What a layer is: an async callable from request to response, wrapping an inner one.

tower's ``Service`` in Trio: ``async def __call__(self, request) -> Response``. A layer either
awaits ``self.inner(request)`` (maybe with a changed request, maybe several times) or answers
by itself. Stacks are assembled in :mod:`meshcore.sidecar`, outermost first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from meshcore.model import Request, Response

__all__ = ["Service"]

Service = Callable[[Request], Awaitable[Response]]
