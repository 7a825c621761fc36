"""Authorization decisions with Istio's AuthorizationPolicy semantics.

Each :class:`AuthorizationRule` is one policy with one rule: an action (``ALLOW``, ``DENY``
or ``AUDIT``), and conditions that must all hold for it to match: ``from`` principals, ``to``
methods and paths, ``when`` header conditions. An empty condition matches anything.

:func:`authorize` evaluates them as Istio does:

1. any matching ``DENY`` denies;
2. otherwise, if there is at least one ``ALLOW`` rule, one of them must match, or the request
   is denied;
3. otherwise (no ``ALLOW`` rule at all) the request is allowed.

``AUDIT`` rules never change the outcome; a matching one marks the request as audited.

Strings match as Istio's do: exact, prefix (``/api/*``), suffix (``*/health``) or presence
(``*``). Principals are compared without the ``spiffe://`` scheme
(``cluster.local/ns/default/sa/checkout``); a plain-text request has no principal and matches
no rule that names principals, as in Istio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "ACTIONS",
    "AuthorizationDecision",
    "AuthorizationRule",
    "HeaderCondition",
    "authorize",
    "string_matches",
]

ACTIONS = ("ALLOW", "DENY", "AUDIT")


def string_matches(pattern: str, value: str) -> bool:
    """Tell whether ``value`` matches ``pattern``: exact, ``prefix*``, ``*suffix`` or ``*``."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _any_matches(patterns: tuple[str, ...], value: str | None) -> bool:
    if not patterns:
        return True
    return value is not None and any(string_matches(p, value) for p in patterns)


@dataclass(frozen=True, slots=True)
class HeaderCondition:
    """``when: [{key: request.headers[NAME], values: [...], notValues: [...]}]``.

    Matches when the header is present, equals one of ``values`` (if any) and none of
    ``not_values``. ``header`` is lower-case.
    """

    header: str
    values: tuple[str, ...] = ()
    not_values: tuple[str, ...] = ()

    def matches(self, value: str | None) -> bool:
        """Tell whether a request whose header has ``value`` (``None``: absent) matches."""
        if value is None:
            return False
        if self.values and not any(string_matches(p, value) for p in self.values):
            return False
        return not any(string_matches(p, value) for p in self.not_values)


@dataclass(frozen=True, slots=True)
class AuthorizationRule:
    """One AuthorizationPolicy with one rule; ``name`` is what denials and audits report."""

    action: str
    name: str = ""
    principals: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    when: tuple[HeaderCondition, ...] = ()

    def matches(
        self,
        method: str,
        path: str,
        principal: str | None,
        header: Callable[[str], str | None],
    ) -> bool:
        """Tell whether every condition of the rule holds for the request."""
        return (
            _any_matches(self.principals, principal)
            and _any_matches(self.methods, method)
            and _any_matches(self.paths, path)
            and all(condition.matches(header(condition.header)) for condition in self.when)
        )


@dataclass(frozen=True, slots=True)
class AuthorizationDecision:
    """The outcome for one request, and which rule decided it (``""``: none did)."""

    allowed: bool
    policy: str = ""
    audited: bool = False

    @property
    def details(self) -> str:
        """Return Envoy's response code details for a denial (``rbac_access_denied_...``)."""
        return f"rbac_access_denied_matched_policy[{self.policy or 'none'}]"


ALLOWED = AuthorizationDecision(True)


def authorize(
    rules: tuple[AuthorizationRule, ...],
    *,
    method: str,
    path: str,
    principal: str | None,
    header: Callable[[str], str | None],
) -> AuthorizationDecision:
    """Decide one request (``path`` without its query string) against ``rules``."""
    if not rules:
        return ALLOWED

    def matching(action: str) -> AuthorizationRule | None:
        for rule in rules:
            if rule.action == action and rule.matches(method, path, principal, header):
                return rule
        return None

    audit = matching("AUDIT")
    audited = audit is not None
    deny = matching("DENY")
    if deny is not None:
        return AuthorizationDecision(False, deny.name, audited)
    if any(rule.action == "ALLOW" for rule in rules):
        allow = matching("ALLOW")
        if allow is None:
            return AuthorizationDecision(False, "", audited)
        return AuthorizationDecision(True, allow.name, audited)
    return AuthorizationDecision(True, "", audited)
