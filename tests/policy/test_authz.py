from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshcore.identity import principal_of
from meshcore.policy.authz import (
    AuthorizationRule,
    HeaderCondition,
    authorize,
    string_matches,
)

CHECKOUT = principal_of("checkout")
BATCH = principal_of("spiffe://cluster.local/ns/default/sa/batch")


def _no_headers(name: str) -> str | None:
    return None


def _decide(
    rules: tuple[AuthorizationRule, ...],
    principal: str | None = CHECKOUT,
    method: str = "GET",
    path: str = "/",
    headers: dict[str, str] | None = None,
) -> tuple[bool, str, bool]:
    decision = authorize(
        rules, method=method, path=path, principal=principal, header=(headers or {}).get
    )
    return decision.allowed, decision.policy, decision.audited


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("/admin", "/admin", True),
        ("/admin", "/admin/x", False),
        ("/admin/*", "/admin/x", True),
        ("/admin/*", "/admin", False),
        ("*/health", "/api/health", True),
        ("*/health", "/api/healthz", False),
        ("*", "", True),
    ],
)
def test_string_matches_exact_prefix_suffix_presence(
    pattern: str, value: str, expected: bool
) -> None:
    assert string_matches(pattern, value) is expected


def test_principals_are_normalised_from_every_spelling() -> None:
    spellings = ["checkout", "cluster.local/ns/default/sa/checkout",
                 "spiffe://cluster.local/ns/default/sa/checkout"]  # fmt: skip
    assert {principal_of(s) for s in spellings} == {"cluster.local/ns/default/sa/checkout"}
    assert principal_of("cluster.local/ns/prod/*") == "cluster.local/ns/prod/*"


def test_no_rules_allow_everything() -> None:
    assert _decide(()) == (True, "", False)


def test_a_matching_deny_wins_over_a_matching_allow() -> None:
    rules = (
        AuthorizationRule("ALLOW", "allow-all"),
        AuthorizationRule("DENY", "no-admin", principals=(BATCH,), paths=("/admin/*",)),
    )
    assert _decide(rules, BATCH, path="/admin/users") == (False, "no-admin", False)
    assert _decide(rules, BATCH, path="/public") == (True, "allow-all", False)
    assert _decide(rules, CHECKOUT, path="/admin/users") == (True, "allow-all", False)


def test_with_an_allow_rule_something_must_match() -> None:
    rules = (AuthorizationRule("ALLOW", "checkout-only", principals=(CHECKOUT,)),)
    assert _decide(rules, CHECKOUT) == (True, "checkout-only", False)
    assert _decide(rules, BATCH) == (False, "", False)
    # Plain text has no principal, so it matches no rule that names principals.
    assert _decide(rules, None) == (False, "", False)


def test_deny_rules_alone_allow_what_they_do_not_match() -> None:
    rules = (AuthorizationRule("DENY", "no-delete", methods=("DELETE",)),)
    assert _decide(rules, method="DELETE") == (False, "no-delete", False)
    assert _decide(rules, method="GET") == (True, "", False)


def test_audit_marks_but_never_decides() -> None:
    rules = (AuthorizationRule("AUDIT", "watch", paths=("*/pay",)),)
    assert _decide(rules, path="/v1/pay") == (True, "", True)
    assert _decide(rules, path="/v1/refund") == (True, "", False)
    denied = (*rules, AuthorizationRule("DENY", "d", paths=("/v1/*",)))
    assert _decide(denied, path="/v1/pay") == (False, "d", True)


def test_when_conditions_on_headers() -> None:
    condition = HeaderCondition("x-tenant", values=("blue", "green-*"), not_values=("green-old",))
    rules = (AuthorizationRule("ALLOW", "tenants", when=(condition,)),)
    assert _decide(rules, headers={"x-tenant": "blue"})[0]
    assert _decide(rules, headers={"x-tenant": "green-2"})[0]
    assert not _decide(rules, headers={"x-tenant": "green-old"})[0]
    assert not _decide(rules, headers={"x-tenant": "red"})[0]
    assert not _decide(rules, headers={})[0]
    presence = (AuthorizationRule("DENY", "no-debug", when=(HeaderCondition("x-debug"),)),)
    assert not _decide(presence, headers={"x-debug": ""})[0]
    assert _decide(presence)[0]


def test_details_name_the_policy_as_envoy_does() -> None:
    rules = (AuthorizationRule("ALLOW", "a", principals=(CHECKOUT,)),)
    decision = authorize(rules, method="GET", path="/", principal=BATCH, header=_no_headers)
    assert decision.details == "rbac_access_denied_matched_policy[none]"


_paths = st.sampled_from(["/", "/admin", "/admin/x", "/api/health", "/pay"])
_principals = st.sampled_from([None, CHECKOUT, BATCH])
_rules = st.builds(
    AuthorizationRule,
    action=st.sampled_from(["ALLOW", "DENY", "AUDIT"]),
    name=st.text("abc", min_size=1, max_size=3),
    principals=st.lists(st.sampled_from([CHECKOUT, BATCH, "*"]), max_size=2).map(tuple),
    methods=st.lists(st.sampled_from(["GET", "POST"]), max_size=2).map(tuple),
    paths=st.lists(st.sampled_from(["/admin/*", "*/health", "/pay", "/"]), max_size=2).map(tuple),
)


@given(st.lists(_rules, max_size=5), _principals, st.sampled_from(["GET", "POST"]), _paths)
def test_matches_the_reference_model(
    rules: list[AuthorizationRule], principal: str | None, method: str, path: str
) -> None:
    matched = [r for r in rules if r.matches(method, path, principal, _no_headers)]
    denied = any(r.action == "DENY" for r in matched)
    has_allow = any(r.action == "ALLOW" for r in rules)
    allowed_by_allow = any(r.action == "ALLOW" for r in matched)
    expected = not denied and (allowed_by_allow or not has_allow)
    decision = authorize(
        tuple(rules), method=method, path=path, principal=principal, header=_no_headers
    )
    assert decision.allowed is expected
    assert decision.audited is any(r.action == "AUDIT" for r in matched)
