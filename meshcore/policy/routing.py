"""HTTP route matching, weighted subsets and mirroring (Istio ``VirtualService.http``).

A destination's routes are tried in order and the first whose ``match`` list matches wins
(a route without ``match`` matches everything). A match entry matches when every condition
it names holds (``uri``, ``method``, ``headers``); the entries of a list are alternatives.
A winning route picks one of its weighted targets (a subset of the destination's endpoints)
with the seeded RNG, and says whether to mirror the request too. No route at all for a
destination means one implicit route to every endpoint; routes that exist but none matches
mean 404 ``NR``, as Envoy answers.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

from meshcore.model import Headers

__all__ = [
    "HeaderMatch",
    "HttpRoute",
    "Mirror",
    "RouteChoice",
    "RouteMatch",
    "StringMatch",
    "WeightedTarget",
    "select_route",
]


@dataclass(frozen=True, slots=True)
class StringMatch:
    """Istio's ``StringMatch``: ``exact``, ``prefix`` or ``regex`` (RE2 syntax, full match)."""

    kind: str  # exact | prefix | regex
    value: str

    def __post_init__(self) -> None:
        if self.kind == "regex":
            re.compile(self.value)  # raises re.error at load, naming the bad pattern

    def matches(self, text: str) -> bool:
        """Tell whether ``text`` matches."""
        if self.kind == "exact":
            return text == self.value
        if self.kind == "prefix":
            return text.startswith(self.value)
        return re.fullmatch(self.value, text) is not None


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    """One header condition: its value matches ``value``, or (``value`` None) it is present."""

    name: str  # lower-case
    value: StringMatch | None = None
    present: bool = True

    def matches(self, headers: Headers) -> bool:
        """Tell whether ``headers`` satisfy this condition."""
        found = [v for k, v in headers if k == self.name]
        if self.value is None:
            return bool(found) == self.present
        return any(self.value.matches(v) for v in found)


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """Istio's ``HTTPMatchRequest`` (the parts meshchaos supports)."""

    uri: StringMatch | None = None
    method: StringMatch | None = None
    headers: tuple[HeaderMatch, ...] = ()

    def matches(self, method: str, path: str, headers: Headers) -> bool:
        """Tell whether a request with these properties matches every condition."""
        if self.uri is not None and not self.uri.matches(path):
            return False
        if self.method is not None and not self.method.matches(method):
            return False
        return all(h.matches(headers) for h in self.headers)


@dataclass(frozen=True, slots=True)
class WeightedTarget:
    """One ``route`` entry: a subset (``""``: every endpoint) and its relative weight."""

    subset: str = ""
    weight: int = 100


@dataclass(frozen=True, slots=True)
class Mirror:
    """Istio's ``mirror`` plus ``mirrorPercentage`` (fraction in [0, 1], default 1)."""

    host: str
    subset: str = ""
    fraction: float = 1.0


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """Istio's ``HTTPRoute``: matches, weighted targets, an optional mirror."""

    matches: tuple[RouteMatch, ...] = ()
    targets: tuple[WeightedTarget, ...] = (WeightedTarget(),)
    mirror: Mirror | None = None
    name: str = ""

    def applies(self, method: str, path: str, headers: Headers) -> bool:
        """Tell whether this route takes the request."""
        return not self.matches or any(m.matches(method, path, headers) for m in self.matches)


@dataclass(frozen=True, slots=True)
class RouteChoice:
    """The decision for one request: the subset to balance over and whether to mirror."""

    subset: str = ""
    mirror: Mirror | None = None


DEFAULT_CHOICE = RouteChoice()


def select_route(
    routes: tuple[HttpRoute, ...],
    method: str,
    path: str,
    headers: Headers,
    rng: random.Random,
) -> RouteChoice | None:
    """Return the choice of the first route that applies, or ``None`` when none does."""
    if not routes:
        return DEFAULT_CHOICE
    for route in routes:
        if route.applies(method, path, headers):
            return RouteChoice(_pick_target(route.targets, rng), _mirror_draw(route.mirror, rng))
    return None


def _pick_target(targets: tuple[WeightedTarget, ...], rng: random.Random) -> str:
    if len(targets) == 1:
        return targets[0].subset
    total = sum(t.weight for t in targets)
    draw = rng.uniform(0, total)
    for target in targets:
        draw -= target.weight
        if draw < 0:
            return target.subset
    return targets[-1].subset  # draw == total exactly


def _mirror_draw(mirror: Mirror | None, rng: random.Random) -> Mirror | None:
    if mirror is None:
        return None
    return mirror if mirror.fraction >= 1.0 or rng.random() < mirror.fraction else None


def subset_members(
    subsets: Mapping[str, Mapping[str, str]],
    subset: str,
    labels: Mapping[str, str],
) -> bool:
    """Tell whether an endpoint with ``labels`` belongs to ``subset`` (``""``: every one)."""
    if not subset:
        return True
    wanted = subsets.get(subset, {})
    return all(labels.get(key) == value for key, value in wanted.items())
