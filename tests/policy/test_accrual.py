import random

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from meshcore.model import Endpoint
from meshcore.policy.accrual import (
    TRANSITIONS,
    BreakerState,
    FailureAccrual,
    FailureAccrualSettings,
)

HOST = Endpoint("h", 1)


def accrual(jitter: float = 0.0) -> FailureAccrual:
    settings = FailureAccrualSettings(3, 1.0, 4.0, jitter)
    return FailureAccrual(settings, [HOST], random.Random(1))


def test_opens_after_consecutive_failures_and_probes_with_backoff() -> None:
    breaker = accrual()
    for _ in range(2):
        breaker.record(HOST, True, 0.0)
    breaker.record(HOST, False, 0.0)  # a success resets the count
    for _ in range(3):
        assert breaker.admits(HOST, 0.0)
        breaker.record(HOST, True, 0.0)
    assert breaker.state(HOST) is BreakerState.OPEN
    assert breaker.open_until(HOST) == 1.0
    assert not breaker.admits(HOST, 0.5)
    assert breaker.admits(HOST, 1.0)
    assert breaker.state(HOST) is BreakerState.HALF_OPEN
    breaker.on_start(HOST)
    assert not breaker.admits(HOST, 1.0)  # one probe at a time
    breaker.record(HOST, True, 1.0)  # the probe fails: 2 s, then 4 s (capped)
    assert breaker.open_until(HOST) == 3.0
    assert breaker.admits(HOST, 3.0)
    breaker.on_start(HOST)
    breaker.record(HOST, True, 3.0)
    assert breaker.open_until(HOST) == 7.0
    assert breaker.admits(HOST, 7.0)
    breaker.on_start(HOST)
    breaker.record(HOST, False, 7.0)
    assert breaker.state(HOST) is BreakerState.CLOSED
    assert breaker.states() == {"h:1": "closed"}
    for _ in range(3):
        breaker.record(HOST, True, 8.0)
    assert breaker.open_until(HOST) == 9.0  # the penalty started over


def test_late_results_while_open_and_unknown_hosts() -> None:
    breaker = accrual()
    for _ in range(3):
        breaker.record(HOST, True, 0.0)
    breaker.record(HOST, False, 0.1)
    breaker.record(HOST, True, 0.2)
    assert breaker.state(HOST) is BreakerState.OPEN
    other = Endpoint("x", 2)
    breaker.record(other, True, 0.0)
    breaker.on_start(other)
    assert breaker.admits(other, 0.0)
    assert breaker.state(other) is BreakerState.CLOSED
    assert breaker.open_until(other) is None


def test_jitter_stays_within_its_ratio() -> None:
    penalties = set()
    for seed in range(50):
        breaker = FailureAccrual(
            FailureAccrualSettings(1, 2.0, 60.0, 0.5), [HOST], random.Random(seed)
        )
        breaker.record(HOST, True, 0.0)
        until = breaker.open_until(HOST)
        assert until is not None
        assert 1.0 <= until <= 3.0
        penalties.add(until)
    assert len(penalties) == 50


def test_transition_table() -> None:
    assert TRANSITIONS[(BreakerState.HALF_OPEN, "failure")] is BreakerState.OPEN
    assert len(TRANSITIONS) == 8


class BreakerMachine(RuleBasedStateMachine):
    """Reference model of the consecutive-failures breaker."""

    def __init__(self) -> None:
        super().__init__()
        self.breaker = accrual()
        self.now = 0.0
        self.failures = 0
        self.state = BreakerState.CLOSED
        self.until = 0.0
        self.openings = 0
        self.probing = False

    @rule(dt=st.floats(0, 5, allow_nan=False))
    def wait(self, dt: float) -> None:
        self.now += dt

    @rule(failed=st.booleans())
    def attempt(self, failed: bool) -> None:
        admitted = self.breaker.admits(HOST, self.now)
        if self.state is BreakerState.OPEN and self.now >= self.until:
            self.state = BreakerState.HALF_OPEN
        expected = self.state is BreakerState.CLOSED or (
            self.state is BreakerState.HALF_OPEN and not self.probing
        )
        assert admitted == expected
        if not admitted:
            return
        self.breaker.on_start(HOST)
        self.breaker.record(HOST, failed, self.now)
        if self.state is BreakerState.HALF_OPEN:
            if failed:
                self.state, self.until = BreakerState.OPEN, self.now + min(2**self.openings, 4)
                self.openings += 1
            else:
                self.state, self.openings = BreakerState.CLOSED, 0
            self.failures = 0
        elif failed:
            self.failures += 1
            if self.failures >= 3:
                self.state, self.until = BreakerState.OPEN, self.now + min(2**self.openings, 4)
                self.openings += 1
                self.failures = 0
        else:
            self.failures = 0

    @invariant()
    def agrees(self) -> None:
        assert self.breaker.state(HOST) is self.state


TestBreaker = BreakerMachine.TestCase
