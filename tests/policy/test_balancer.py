import random
from collections import Counter

import pytest

from meshcore.model import Endpoint
from meshcore.policy.balancer import LeastRequest, RandomPick, RoundRobin, make_balancer

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
        balancer.on_end(HOSTS[0])
    picks = Counter(balancer.pick(HOSTS, rng, frozenset()) for _ in range(3000))
    assert picks[HOSTS[0]] > 800


def test_random_is_seeded() -> None:
    first = [RandomPick().pick(HOSTS, rng, frozenset()) for rng in [random.Random(9)] * 20]
    second = [RandomPick().pick(HOSTS, rng, frozenset()) for rng in [random.Random(9)] * 20]
    assert first == second
