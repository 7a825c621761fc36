import math
import random
from collections import Counter

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from meshcore.model import Endpoint
from meshcore.policy.balancer import (
    LOAD_BALANCERS,
    LeastRequest,
    PeakEwma,
    RandomPick,
    RoundRobin,
    make_balancer,
)

HOSTS = [Endpoint("h", port) for port in (1, 2, 3)]


def test_round_robin_cycles() -> None:
    balancer = RoundRobin()
    picks = [balancer.pick(HOSTS, random.Random(0), frozenset()) for _ in range(6)]
    assert picks == HOSTS * 2


def test_excluded_hosts_are_avoided_while_others_remain() -> None:
    rng = random.Random(1)
    for balancer in (RoundRobin(), RandomPick(), LeastRequest()):
        for _ in range(50):
            assert balancer.pick(HOSTS, rng, frozenset(HOSTS[:2])) == HOSTS[2]
        # When every host was tried, any may be picked again.
        assert balancer.pick(HOSTS, rng, frozenset(HOSTS)) in HOSTS


def test_no_endpoints_gives_none() -> None:
    for name in ("ROUND_ROBIN", "RANDOM", "LEAST_REQUEST"):
        assert make_balancer(name).pick([], random.Random(0), frozenset()) is None


def test_least_request_prefers_the_less_loaded_of_two() -> None:
    balancer = LeastRequest()
    for _ in range(5):
        balancer.on_start(HOSTS[0])
    rng = random.Random(2)
    picks = Counter(balancer.pick(HOSTS, rng, frozenset()) for _ in range(3000))
    # HOSTS[0] can only win when it is not drawn at all: never, since P2C draws two of three
    # and the other one is always less loaded.
    assert picks[HOSTS[0]] == 0
    assert picks[HOSTS[1]] == pytest.approx(1500, abs=150)
    for _ in range(5):
        balancer.on_end(HOSTS[0], 0.01, 0.0)
    picks = Counter(balancer.pick(HOSTS, rng, frozenset()) for _ in range(3000))
    assert picks[HOSTS[0]] > 800


def test_random_is_seeded() -> None:
    first = [RandomPick().pick(HOSTS, rng, frozenset()) for rng in [random.Random(9)] * 20]
    second = [RandomPick().pick(HOSTS, rng, frozenset()) for rng in [random.Random(9)] * 20]
    assert first == second


def test_peak_ewma_follows_latency_peaks_and_decays() -> None:
    balancer = PeakEwma(decay_s=10.0, default_rtt_s=0.030)
    a, b = HOSTS[0], HOSTS[1]
    assert balancer.cost(a, 0.0) == pytest.approx(0.030)
    balancer.on_start(a)
    balancer.on_end(a, 0.100, 1.0)
    assert balancer.cost(a, 1.0) == pytest.approx(0.100)
    balancer.on_start(a)
    balancer.on_end(a, 0.200, 2.0)  # a slower sample is taken at once
    assert balancer.cost(a, 2.0) == pytest.approx(0.200)
    balancer.on_start(a)
    balancer.on_end(a, 0.010, 12.0)  # a faster one is averaged in, weighted by elapsed time
    weight = math.exp(-1.0)
    assert balancer.cost(a, 12.0) == pytest.approx(0.200 * weight + 0.010 * (1 - weight))
    assert balancer.cost(a, 22.0) == pytest.approx(balancer.cost(a, 12.0) * math.exp(-1.0))
    balancer.on_start(b)
    assert balancer.cost(b, 22.0) == pytest.approx(0.060)  # default RTT x (1 in flight + 1)
    rng = random.Random(3)
    assert {balancer.pick([a, b], rng, frozenset(), 12.0) for _ in range(50)} == {b}
    assert balancer.pick([a], rng, frozenset(), 0.0) == a
    assert balancer.pick([], rng, frozenset(), 0.0) is None


class BalancerMachine(RuleBasedStateMachine):
    """Every balancer: picks a candidate, avoids excluded hosts while others remain, counts."""

    def __init__(self) -> None:
        super().__init__()
        self.balancers = [make_balancer(name) for name in LOAD_BALANCERS]
        self.rng = random.Random(0)
        self.now = 0.0
        self.in_flight: list[tuple[int, Endpoint]] = []

    @rule(
        candidates=st.lists(st.sampled_from(HOSTS), unique=True),
        exclude=st.frozensets(st.sampled_from(HOSTS)),
        which=st.integers(0, len(LOAD_BALANCERS) - 1),
    )
    def pick(self, candidates: list[Endpoint], exclude: frozenset[Endpoint], which: int) -> None:
        balancer = self.balancers[which]
        chosen = balancer.pick(candidates, self.rng, exclude, self.now)
        if not candidates:
            assert chosen is None
            return
        assert chosen in candidates
        if any(c not in exclude for c in candidates):
            assert chosen not in exclude
        balancer.on_start(chosen)
        self.in_flight.append((which, chosen))

    @precondition(lambda self: bool(self.in_flight))
    @rule(latency=st.floats(0, 1, allow_nan=False))
    def finish(self, latency: float) -> None:
        which, endpoint = self.in_flight.pop(0)
        self.now += latency
        self.balancers[which].on_end(endpoint, latency, self.now)


TestBalancers = BalancerMachine.TestCase
