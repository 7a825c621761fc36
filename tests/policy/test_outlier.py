import math

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from meshcore.model import Endpoint
from meshcore.policy.outlier import (
    MAX_EJECTION_TIME_S,
    TRANSITIONS,
    HostState,
    OutlierDetector,
    OutlierSettings,
)

HOSTS = [Endpoint("h", port) for port in range(10)]


def detector(**settings: float) -> OutlierDetector:
    return OutlierDetector(OutlierSettings(**settings), HOSTS[:4], now=0.0)  # type: ignore[arg-type]


def test_consecutive_5xx_eject_at_once_and_success_resets() -> None:
    d = detector(consecutive_5xx_errors=3, max_ejection_percent=50)
    for _ in range(2):
        assert not d.record(HOSTS[0], 500, 1.0)
    d.record(HOSTS[0], 200, 1.0)
    assert not d.record(HOSTS[0], 503, 1.0)
    assert not d.record(HOSTS[0], None, 1.0)  # a connect failure counts as a 5xx
    assert d.record(HOSTS[0], 500, 2.5)
    assert d.ejected_until(HOSTS[0]) == 32.5
    assert d.state(HOSTS[0]) is HostState.EJECTED
    assert d.available(HOSTS[:2], 3.0) == ([HOSTS[1]], [(HOSTS[0], 32.5)])


def test_gateway_errors_only_count_502_to_504_and_local_errors() -> None:
    d = detector(consecutive_5xx_errors=0, consecutive_gateway_errors=2, max_ejection_percent=100)
    assert not d.record(HOSTS[0], 500, 0.0)
    assert not d.record(HOSTS[0], 502, 0.0)
    assert not d.record(HOSTS[0], 500, 0.0)  # a plain 500 neither counts nor resets
    assert d.record(HOSTS[0], None, 0.0)


def test_hosts_return_at_the_first_sweep_after_their_time_and_times_grow() -> None:
    d = detector(consecutive_5xx_errors=1, interval_s=10.0, base_ejection_time_s=30.0)
    d.record(HOSTS[0], 500, 5.0)
    d.advance(34.9)
    assert d.ejections_active == 1  # due at 35 s, but sweeps run at 10, 20, 30, 40 s
    d.advance(40.0)
    assert d.ejections_active == 0
    d.record(HOSTS[0], 500, 41.0)  # second ejection: 60 s
    assert d.ejected_until(HOSTS[0]) == 101.0
    d.advance(110.0)
    assert d.statistics(110.0).ejections_total == 2
    assert d.ejected_until(HOSTS[0]) is None


def test_ejection_count_decays_while_healthy() -> None:
    d = detector(consecutive_5xx_errors=1, interval_s=10.0, base_ejection_time_s=100.0)
    d.record(HOSTS[0], 500, 0.0)
    d.advance(100.0)
    d.record(HOSTS[0], 500, 100.0)  # second ejection: 200 s
    assert d.ejected_until(HOSTS[0]) == 300.0
    d.advance(310.0)  # back at 300 s, healthy for an interval: the multiplier goes 2 -> 1
    d.record(HOSTS[0], 500, 311.0)
    assert d.ejected_until(HOSTS[0]) == 511.0  # 2 x 100 s, not 3 x


def test_ejection_time_is_capped() -> None:
    d = detector(consecutive_5xx_errors=1, interval_s=10.0, base_ejection_time_s=200.0)
    d.record(HOSTS[0], 500, 0.0)
    d.advance(200.0)
    d.record(HOSTS[0], 500, 200.0)
    assert d.ejected_until(HOSTS[0]) == 200.0 + MAX_EJECTION_TIME_S


def test_max_ejection_percent_but_always_one() -> None:
    d = detector(consecutive_5xx_errors=1, max_ejection_percent=10)
    assert d.record(HOSTS[0], 500, 0.0)  # 25 % > 10 %, but one host may always go
    assert not d.record(HOSTS[1], 500, 0.0)
    assert d.ejections_active == 1
    d2 = detector(consecutive_5xx_errors=1, max_ejection_percent=50)
    assert d2.record(HOSTS[0], 500, 0.0)
    assert d2.record(HOSTS[1], 500, 0.0)
    assert not d2.record(HOSTS[2], 500, 0.0)


def test_unknown_hosts_and_late_results() -> None:
    d = detector(consecutive_5xx_errors=1)
    assert not d.record(Endpoint("x", 1), 500, 0.0)
    assert d.state(Endpoint("x", 1)) is HostState.HEALTHY
    assert d.ejected_until(Endpoint("x", 1)) is None
    d.record(HOSTS[0], 500, 0.0)
    assert not d.record(HOSTS[0], 500, 1.0)  # already ejected
    assert d.statistics(1.0).ejected == ("h:0",)


def test_the_transition_table_is_complete_for_the_events_used() -> None:
    assert set(TRANSITIONS) == {
        (HostState.HEALTHY, "result"), (HostState.HEALTHY, "threshold"),
        (HostState.HEALTHY, "capped"), (HostState.EJECTED, "result"),
        (HostState.EJECTED, "expired"),
    }  # fmt: skip


class OutlierMachine(RuleBasedStateMachine):
    """Reference model: counts, cap, and ejection windows checked against the detector."""

    def __init__(self) -> None:
        super().__init__()
        self.settings = OutlierSettings(
            consecutive_5xx_errors=2, interval_s=10.0, base_ejection_time_s=15.0,
            max_ejection_percent=40,
        )  # fmt: skip
        self.hosts = HOSTS[:5]
        self.detector = OutlierDetector(self.settings, self.hosts, now=0.0)
        self.now = 0.0
        self.ejected_at: dict[Endpoint, float] = {}

    @rule(dt=st.floats(0, 25, allow_nan=False))
    def wait(self, dt: float) -> None:
        self.now += dt
        self.detector.advance(self.now)

    @rule(index=st.integers(0, 4), status=st.sampled_from([200, 404, 500, 503, None]))
    def result(self, index: int, status: int | None) -> None:
        host = self.hosts[index]
        before = self.detector.ejections_active
        ejected = self.detector.record(host, status, self.now)
        if ejected:
            assert status is None or status >= 500
            assert before == 0 or 100 * (before + 1) / 5 <= 40
            self.ejected_at[host] = self.now

    @invariant()
    def ejected_hosts_wait_their_time(self) -> None:
        for host in self.hosts:
            until = self.detector.ejected_until(host)
            if until is not None:
                assert until > self.ejected_at[host]
                # Never held past the first sweep after the end of its time.
                assert self.now < until + self.settings.interval_s + 1e-9 or math.isclose(
                    self.now, until + self.settings.interval_s
                )

    @invariant()
    def at_most_the_cap_or_one(self) -> None:
        assert self.detector.ejections_active <= max(1, 2)


TestOutlier = OutlierMachine.TestCase
