from collections import deque

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from meshcore.policy.limits import ConnectionPoolSettings, PoolLimits


def test_unlimited_by_default() -> None:
    settings = ConnectionPoolSettings()
    assert not settings.limits_requests
    limits = PoolLimits(settings)
    assert all(limits.admit() == PoolLimits.ADMITTED for _ in range(100))


def test_queue_then_pending_overflow_then_fifo_handover() -> None:
    limits = PoolLimits(ConnectionPoolSettings(max_connections=1, http1_max_pending_requests=2))
    assert limits.admit() == PoolLimits.ADMITTED
    first, second = limits.admit(), limits.admit()
    assert (first, second) == (0, 1)
    assert limits.admit() == PoolLimits.OVERFLOW_PENDING
    assert limits.release() == 0  # the freed connection passes to the oldest waiter
    limits.abandon(1)
    assert limits.statistics().pending == limits.pending == 0
    assert limits.release() is None
    assert limits.statistics().active == 0


def test_max_requests_overflows_before_queueing() -> None:
    limits = PoolLimits(ConnectionPoolSettings(http2_max_requests=1))
    assert limits.admit() == PoolLimits.ADMITTED
    assert limits.admit() == PoolLimits.OVERFLOW_REQUESTS


class LimitsMachine(RuleBasedStateMachine):
    """Model: active <= maxConnections, pending <= max pending, FIFO order of waiters."""

    def __init__(self) -> None:
        super().__init__()
        self.settings = ConnectionPoolSettings(
            max_connections=2, http1_max_pending_requests=3, http2_max_requests=4
        )
        self.limits = PoolLimits(self.settings)
        self.active = 0
        self.queue: deque[int] = deque()

    @rule()
    def admit(self) -> None:
        result = self.limits.admit()
        if self.active >= 4:
            assert result == PoolLimits.OVERFLOW_REQUESTS
        elif self.active < 2:
            assert result == PoolLimits.ADMITTED
            self.active += 1
        elif len(self.queue) >= 3:
            assert result == PoolLimits.OVERFLOW_PENDING
        else:
            assert result >= 0
            self.queue.append(result)

    @precondition(lambda self: self.active > 0)
    @rule()
    def release(self) -> None:
        woken = self.limits.release()
        if self.queue:
            assert woken == self.queue.popleft()
        else:
            assert woken is None
            self.active -= 1

    @precondition(lambda self: bool(self.queue))
    @rule(index=st.integers(0, 2))
    def abandon(self, index: int) -> None:
        ticket = self.queue[index % len(self.queue)]
        self.queue.remove(ticket)
        self.limits.abandon(ticket)

    @invariant()
    def within_limits(self) -> None:
        stats = self.limits.statistics()
        assert (stats.active, stats.pending) == (self.active, len(self.queue))
        assert stats.active <= 2
        assert stats.pending <= 3


TestLimits = LimitsMachine.TestCase
