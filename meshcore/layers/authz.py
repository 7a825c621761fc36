"""The authorization layer: Istio's AuthorizationPolicy on the inbound side.

It decides with :func:`~meshcore.policy.authz.authorize` from the request's method, path,
headers and the verified mTLS principal of its connection. A denial is answered here, as
Envoy's RBAC filter does: 403 with body ``RBAC: access denied``, response flag ``RBAC`` and
response code details naming the policy; the app never sees the request. Decisions are
counted with Envoy's RBAC statistic names (``rbac.allowed``, ``rbac.denied``, plus
``rbac.audited`` for requests an ``AUDIT`` rule matched).
"""

from __future__ import annotations

from collections import Counter

from meshcore.layers.base import Service
from meshcore.model import Request, Response
from meshcore.policy.authz import AuthorizationRule, authorize

__all__ = ["DENIED_BODY", "AuthorizationLayer"]

DENIED_BODY = "RBAC: access denied"


class AuthorizationLayer:
    """Passes on the requests ``rules`` allow and answers the others 403."""

    def __init__(
        self, inner: Service, rules: tuple[AuthorizationRule, ...], counters: Counter[str]
    ) -> None:
        self.inner = inner
        self._rules = rules
        self._counters = counters

    async def __call__(self, request: Request) -> Response:
        """Authorize ``request``; forward it or deny it."""
        decision = authorize(
            self._rules,
            method=request.method,
            path=request.path,
            principal=request.peer.principal if request.peer is not None else None,
            header=request.header,
        )
        if decision.audited:
            self._counters["rbac.audited"] += 1
        if not decision.allowed:
            self._counters["rbac.denied"] += 1
            return Response.local(403, DENIED_BODY, "RBAC").replace(details=decision.details)
        self._counters["rbac.allowed"] += 1
        return await self.inner(request)
