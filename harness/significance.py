"""The Mann-Whitney U test: do two samples come from one distribution?

``meshchaos compare`` uses it on per-interval values (one p99 per second, say) so that the noise
between two runs of the same build is not called a regression. The test is rank-based: it makes
no assumption about the shape of latency distributions, which are anything but normal, and one
wild interval moves it no more than any other interval ranked above the rest.

Two-sided p-values, as SciPy's ``mannwhitneyu`` computes them: the exact distribution of U when
both samples are small and have no ties (counted by the classic recurrence), otherwise the normal
approximation with the tie correction of the variance and a continuity correction of 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

__all__ = ["EXACT_MAX_SIZE", "MannWhitney", "mann_whitney_u"]

EXACT_MAX_SIZE = 25
"""Both samples at most this long and no ties: the exact distribution is used."""


@dataclass(frozen=True, slots=True)
class MannWhitney:
    """A test's result: U of the first sample, the two-sided p-value, and how it was computed."""

    u: float
    p_value: float
    exact: bool


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Return each value's rank (1-based, ties get their average rank) and the tie group sizes."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties = []
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        average = (start + end) / 2.0 + 1.0
        for position in range(start, end + 1):
            ranks[order[position]] = average
        ties.append(end - start + 1)
        start = end + 1
    return ranks, ties


@cache
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """Return how many of the C(m+n, m) orderings give each U = 0 .. m*n (no ties).

    The largest value belongs either to the first sample (it beats all ``n`` others: U grows by
    n) or to the second (U unchanged): f(m, n, u) = f(m-1, n, u-n) + f(m, n-1, u).
    """
    if m == 0 or n == 0:
        return (1,)
    counts = [0] * (m * n + 1)
    for u, count in enumerate(_u_counts(m - 1, n)):
        counts[u + n] += count
    for u, count in enumerate(_u_counts(m, n - 1)):
        counts[u] += count
    return tuple(counts)


def mann_whitney_u(first: Sequence[float], second: Sequence[float]) -> MannWhitney:
    """Test whether ``first`` and ``second`` differ in location; ValueError if either is empty."""
    m, n = len(first), len(second)
    if m == 0 or n == 0:
        raise ValueError("the Mann-Whitney U test needs at least one value in each sample")
    ranks, ties = _ranks([*first, *second])
    u = sum(ranks[:m]) - m * (m + 1) / 2.0
    if max(ties) == 1 and max(m, n) <= EXACT_MAX_SIZE:
        counts = _u_counts(m, n)
        total = sum(counts)
        below = sum(counts[: int(u) + 1]) / total  # P(U <= u)
        above = sum(counts[int(u) :]) / total  # P(U >= u)
        return MannWhitney(u, min(1.0, 2.0 * min(below, above)), exact=True)
    size = m + n
    tie_term = sum(t**3 - t for t in ties) / (size * (size - 1))
    variance = m * n / 12.0 * ((size + 1) - tie_term)
    if variance <= 0.0:  # every value equal: nothing tells the samples apart
        return MannWhitney(u, 1.0, exact=False)
    z = max(0.0, abs(u - m * n / 2.0) - 0.5) / math.sqrt(variance)
    return MannWhitney(u, min(1.0, math.erfc(z / math.sqrt(2.0))), exact=False)
