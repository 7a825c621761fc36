"""The Mann-Whitney U test against brute force and SciPy's documented values."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from harness.significance import EXACT_MAX_SIZE, mann_whitney_u

MALES = [19, 22, 16, 29, 24]
FEMALES = [20, 11, 17, 12]


def test_scipy_documentation_example_exact() -> None:
    # scipy.stats.mannwhitneyu(males, females) -> statistic=17.0, pvalue=0.1111111111111111
    result = mann_whitney_u(MALES, FEMALES)
    assert result.exact
    assert result.u == 17.0
    assert result.p_value == pytest.approx(0.1111111111111111, rel=1e-12)


def test_normal_approximation_with_continuity_correction() -> None:
    # The same samples with a tie, which forces the normal approximation:
    # mu = 10, var = 20/12 * (10 - (2**3 - 2) / 72), z = (|U - mu| - 0.5) / sqrt(var).
    result = mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 19])
    assert not result.exact
    variance = 20 / 12 * (10 - 6 / 72)
    expected = math.erfc((abs(result.u - 10) - 0.5) / math.sqrt(variance) / math.sqrt(2))
    assert result.u == 15.5
    assert result.p_value == pytest.approx(expected, rel=1e-12)


def brute_force_p(first: list[float], second: list[float]) -> float:
    """Two-sided p-value by enumerating every split of the pooled values."""
    pooled = first + second
    m = len(first)

    def u_of(sample: tuple[float, ...]) -> float:
        return sum(1.0 for x in sample for y in pooled if y < x) - m * (m - 1) / 2

    observed = u_of(tuple(first))
    us = [u_of(combo) for combo in itertools.combinations(pooled, m)]
    below = sum(u <= observed for u in us) / len(us)
    above = sum(u >= observed for u in us) / len(us)
    return min(1.0, 2 * min(below, above))


@pytest.mark.parametrize("seed", range(8))
def test_exact_p_values_equal_brute_force_enumeration(seed: int) -> None:
    rng = random.Random(seed)
    m, n = rng.randint(1, 6), rng.randint(1, 6)
    values = rng.sample(range(1000), m + n)  # distinct: no ties
    first, second = [float(v) for v in values[:m]], [float(v) for v in values[m:]]
    assert mann_whitney_u(first, second).p_value == pytest.approx(brute_force_p(first, second))


def test_identical_samples_are_not_different() -> None:
    assert mann_whitney_u([5.0] * 30, [5.0] * 30).p_value == 1.0
    sample = [float(v) for v in range(40)]
    assert mann_whitney_u(sample, sample).p_value == pytest.approx(1.0)


def test_a_clear_shift_is_significant_and_the_test_is_symmetric() -> None:
    rng = random.Random(3)
    first = [rng.gauss(10.0, 1.0) for _ in range(60)]
    second = [rng.gauss(12.0, 1.0) for _ in range(60)]
    forward, backward = mann_whitney_u(first, second), mann_whitney_u(second, first)
    assert forward.p_value < 1e-6
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.u + backward.u == 60 * 60


def test_large_samples_use_the_normal_approximation() -> None:
    result = mann_whitney_u(list(range(EXACT_MAX_SIZE + 1)), [0.5])
    assert not result.exact


def test_an_empty_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        mann_whitney_u([], [1.0])
