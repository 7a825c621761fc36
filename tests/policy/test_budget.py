import math

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from meshcore.policy.budget import RetryAdmission
from meshcore.policy.retry import RetryBudget


def test_unlimited_by_default() -> None:
    admission = RetryAdmission()
    assert admission.limit() == math.inf
    for _ in range(1000):
        assert admission.try_start_retry() is None


def test_max_retries_caps_concurrent_retries() -> None:
    admission = RetryAdmission(max_retries=2)
    assert admission.try_start_retry() is None
    assert admission.try_start_retry() is None
    assert admission.try_start_retry() == "maxRetries (2) retries already in flight"
    admission.retry_ended()
    assert admission.try_start_retry() is None


def test_budget_is_max_of_minimum_and_share_and_replaces_max_retries() -> None:
    admission = RetryAdmission(max_retries=0, budget=RetryBudget(0.2, 3))
    for _ in range(20):
        admission.request_started()
    assert admission.limit() == 4.0
    assert [admission.try_start_retry() for _ in range(5)] == [None] * 4 + ["budget exhausted"]
    stats = admission.statistics()
    assert (stats.active_requests, stats.retries_in_flight, stats.limit) == (20, 4, 4.0)
    for _ in range(19):
        admission.request_ended()
    assert admission.limit() == 3.0


class AdmissionMachine(RuleBasedStateMachine):
    """Model: retries in flight never exceed the limit at the time each was admitted."""

    def __init__(self) -> None:
        super().__init__()
        self.admission = RetryAdmission(budget=RetryBudget(0.25, 2))
        self.requests = 0
        self.retries = 0

    @rule()
    def start_request(self) -> None:
        self.admission.request_started()
        self.requests += 1

    @precondition(lambda self: self.requests > 0)
    @rule()
    def end_request(self) -> None:
        self.admission.request_ended()
        self.requests -= 1

    @rule()
    def try_retry(self) -> None:
        allowed = self.retries + 1 <= max(2, 0.25 * self.requests)
        refused = self.admission.try_start_retry()
        assert (refused is None) == allowed
        self.retries += allowed

    @precondition(lambda self: self.retries > 0)
    @rule(count=st.integers(1, 3))
    def end_retries(self, count: int) -> None:
        for _ in range(min(count, self.retries)):
            self.admission.retry_ended()
            self.retries -= 1

    @invariant()
    def counts_agree(self) -> None:
        stats = self.admission.statistics()
        assert (stats.active_requests, stats.retries_in_flight) == (self.requests, self.retries)


TestAdmission = AdmissionMachine.TestCase
