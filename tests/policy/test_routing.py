import random
import re
from collections import Counter

import pytest

from meshcore.policy.routing import (
    HeaderMatch,
    HttpRoute,
    Mirror,
    RouteMatch,
    StringMatch,
    WeightedTarget,
    select_route,
    subset_members,
)

RNG = random.Random(0)


def test_string_matches() -> None:
    assert StringMatch("exact", "/a").matches("/a")
    assert not StringMatch("exact", "/a").matches("/ab")
    assert StringMatch("prefix", "/a").matches("/ab")
    assert StringMatch("regex", "/a/[0-9]+").matches("/a/12")
    assert not StringMatch("regex", "/a/[0-9]+").matches("/a/12/x")  # full match, as RE2
    with pytest.raises(re.error):
        StringMatch("regex", "(")


def test_header_conditions() -> None:
    headers = (("x-user", "alice"), ("x-user", "bob"))
    assert HeaderMatch("x-user", StringMatch("exact", "bob")).matches(headers)
    assert HeaderMatch("x-user").matches(headers)
    assert not HeaderMatch("x-other").matches(headers)
    assert HeaderMatch("x-other", present=False).matches(headers)


def test_first_applying_route_wins_and_no_match_is_none() -> None:
    get_api = RouteMatch(uri=StringMatch("prefix", "/api"), method=StringMatch("exact", "GET"))
    api = HttpRoute((get_api,), (WeightedTarget("v1"),))
    canary = HttpRoute((RouteMatch(headers=(HeaderMatch("x-canary"),)),), (WeightedTarget("v2"),))
    routes = (canary, api)
    choice = select_route(routes, "GET", "/api/x", (), RNG)
    assert choice is not None
    assert choice.subset == "v1"
    choice = select_route(routes, "GET", "/api/x", (("x-canary", "1"),), RNG)
    assert choice is not None
    assert choice.subset == "v2"
    assert select_route(routes, "POST", "/api/x", (), RNG) is None
    assert select_route(routes, "GET", "/other", (), RNG) is None
    default = select_route((), "POST", "/", (), RNG)
    assert default is not None
    assert (default.subset, default.mirror) == ("", None)
    catch_all = select_route((HttpRoute(),), "DELETE", "/z", (), RNG)
    assert catch_all is not None
    assert catch_all.subset == ""


def test_weights_and_mirror_fraction_are_honoured_and_seeded() -> None:
    route = HttpRoute(
        targets=(WeightedTarget("a", 70), WeightedTarget("b", 30), WeightedTarget("c", 0)),
        mirror=Mirror("shadow", "", 0.25),
    )
    rng = random.Random(5)
    choices = [select_route((route,), "GET", "/", (), rng) for _ in range(10_000)]
    subsets = Counter(c.subset for c in choices if c is not None)
    assert subsets["c"] == 0
    assert 6800 < subsets["a"] < 7200
    mirrored = sum(c is not None and c.mirror is not None for c in choices)
    assert 2300 < mirrored < 2700
    always = HttpRoute(mirror=Mirror("shadow"))
    assert all(
        (c := select_route((always,), "GET", "/", (), rng)) is not None and c.mirror is not None
        for _ in range(10)
    )


def test_the_last_target_takes_the_top_of_the_range() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    route = HttpRoute(targets=(WeightedTarget("a", 50), WeightedTarget("b", 50)))
    choice = select_route((route,), "GET", "/", (), Top())
    assert choice is not None
    assert choice.subset == "b"


def test_subset_membership() -> None:
    subsets = {"v2": {"version": "v2"}}
    assert subset_members(subsets, "", {})
    assert subset_members(subsets, "v2", {"version": "v2", "zone": "a"})
    assert not subset_members(subsets, "v2", {"version": "v1"})
