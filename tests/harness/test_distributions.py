import math
import random
import statistics

import pytest

from harness.distributions import (
    Exponential,
    Fixed,
    Histogram,
    Lognormal,
    Normal,
    Pareto,
    Uniform,
    read_distribution,
)
from meshcore.fields import FieldReader, Problem

N = 20_000


def samples(distribution: object, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return [distribution.sample(rng) for _ in range(N)]  # type: ignore[attr-defined]


def quantile(values: list[float], q: float) -> float:
    return sorted(values)[int(q * len(values))]


def test_fixed_always_gives_its_value_and_draws_nothing() -> None:
    rng = random.Random(1)
    state = rng.getstate()
    assert Fixed(0.002).sample(rng) == 0.002
    assert rng.getstate() == state


def test_lognormal_has_the_median_and_p99_it_was_given() -> None:
    values = samples(Lognormal(median_s=0.005, p99_s=0.040))
    assert quantile(values, 0.5) == pytest.approx(0.005, rel=0.03)
    assert quantile(values, 0.99) == pytest.approx(0.040, rel=0.10)


def test_lognormal_parameters() -> None:
    distribution = Lognormal(median_s=0.005, p99_s=0.040)
    assert distribution.mu == math.log(0.005)
    assert distribution.sigma == pytest.approx(math.log(8) / 2.3263478740408408)


def test_uniform_stays_within_bounds_and_centres_on_the_middle() -> None:
    values = samples(Uniform(0.001, 0.005))
    assert min(values) >= 0.001
    assert max(values) <= 0.005
    assert statistics.fmean(values) == pytest.approx(0.003, rel=0.02)


def test_normal_is_clamped_at_zero() -> None:
    values = samples(Normal(mean_s=0.0, stddev_s=0.001))
    assert min(values) == 0.0
    assert sum(v == 0.0 for v in values) / N == pytest.approx(0.5, abs=0.02)


def test_normal_mean_and_stddev_far_from_zero() -> None:
    values = samples(Normal(mean_s=0.010, stddev_s=0.001))
    assert statistics.fmean(values) == pytest.approx(0.010, rel=0.01)
    assert statistics.stdev(values) == pytest.approx(0.001, rel=0.05)


def test_exponential_has_its_mean() -> None:
    values = samples(Exponential(mean_s=0.004))
    assert statistics.fmean(values) == pytest.approx(0.004, rel=0.03)
    assert quantile(values, 0.5) == pytest.approx(0.004 * math.log(2), rel=0.04)


def test_pareto_starts_at_its_scale_with_the_expected_median() -> None:
    values = samples(Pareto(scale_s=0.002, shape=1.5))
    assert min(values) >= 0.002
    assert quantile(values, 0.5) == pytest.approx(0.002 * 2 ** (1 / 1.5), rel=0.03)


def test_histogram_draws_values_in_proportion_to_weights() -> None:
    values = samples(Histogram(((0.005, 9.0), (0.050, 1.0))))
    assert set(values) == {0.005, 0.050}
    assert values.count(0.050) / N == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize(
    "distribution",
    [
        Uniform(0.001, 0.005),
        Normal(0.005, 0.001),
        Lognormal(0.005, 0.040),
        Exponential(0.004),
        Pareto(0.002, 1.5),
        Histogram(((0.005, 9.0), (0.050, 1.0))),
    ],
)
def test_samples_are_determined_by_the_seed(distribution: object) -> None:
    first = samples(distribution, seed=42)[:200]
    assert samples(distribution, seed=42)[:200] == first
    assert samples(distribution, seed=43)[:200] != first


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Uniform(0.005, 0.001), "must not be below min"),
        (lambda: Lognormal(0.005, 0.001), "must not be below median"),
        (lambda: Lognormal(0.0, 0.001), "median must be a duration above 0s"),
        (lambda: Exponential(0.0), "mean must be a duration above 0s"),
        (lambda: Pareto(0.001, 0.0), "shape must be a number above 0"),
        (lambda: Normal(0.001, -1.0), "stddev must be a duration"),
        (lambda: Histogram(()), "at least one value"),
        (lambda: Histogram(((0.001, 0.0),)), "a weight above 0"),
        (lambda: Fixed(-0.001), "value must be a duration"),
    ],
)
def test_invalid_parameters_are_refused(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_descriptions_read_like_the_file() -> None:
    assert Fixed(0.002).describe() == "2ms"
    assert Uniform(0.001, 0.005).describe() == "uniform 1ms..5ms"
    assert Lognormal(0.005, 0.04).describe() == "lognormal median 5ms p99 40ms"
    assert Pareto(0.001, 1.5).describe() == "pareto scale 1ms shape 1.5"
    assert Histogram(((0.005, 9), (0.05, 1))).describe() == "histogram 5ms x9, 50ms x1"


def read(value: object) -> tuple[object, list[Problem]]:
    problems: list[Problem] = []
    reader = FieldReader({"sleep": value}, ("step",), problems)
    return read_distribution(reader, "sleep"), problems


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2ms", Fixed(0.002)),
        ({"distribution": "fixed", "value": "1s"}, Fixed(1.0)),
        ({"distribution": "uniform", "min": "1ms", "max": "3ms"}, Uniform(0.001, 0.003)),
        ({"distribution": "normal", "mean": "5ms", "stddev": "1ms"}, Normal(0.005, 0.001)),
        ({"distribution": "lognormal", "median": "5ms", "p99": "40ms"}, Lognormal(0.005, 0.04)),
        ({"distribution": "exponential", "mean": "4ms"}, Exponential(0.004)),
        ({"distribution": "pareto", "scale": "2ms", "shape": 1.5}, Pareto(0.002, 1.5)),
        (
            {
                "distribution": "histogram",
                "values": [{"value": "5ms", "weight": 9}, {"value": "50ms"}],
            },
            Histogram(((0.005, 9.0), (0.05, 1.0))),
        ),
    ],
)
def test_every_form_is_read(value: object, expected: object) -> None:
    assert read(value) == (expected, [])


def test_unknown_distribution_names_the_choices() -> None:
    distribution, problems = read({"distribution": "gamma", "mean": "1ms"})
    assert distribution is None
    assert [p.path for p in problems] == [("step", "sleep", "distribution")]
    assert "expected one of fixed, uniform, normal, lognormal" in problems[0].message


def test_parameters_that_do_not_fit_together_are_reported_once_at_the_mapping() -> None:
    distribution, problems = read({"distribution": "lognormal", "median": "5ms", "p99": "1ms"})
    assert distribution is None
    assert problems == [
        Problem(("step", "sleep"), "sleep: p99 (1ms) must not be below median (5ms)")
    ]


def test_an_invalid_field_is_reported_at_the_field_only() -> None:
    distribution, problems = read({"distribution": "uniform", "min": "1ms", "max": 3, "x": 1})
    assert distribution is None
    assert [p.path for p in problems] == [("step", "sleep", "max"), ("step", "sleep", "x")]


def test_histogram_needs_values() -> None:
    _, problems = read({"distribution": "histogram"})
    assert [p.message for p in problems] == ["values: required field is missing"]
