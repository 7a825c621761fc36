import random

import pytest

from meshcore.policy.faults import NO_FAULT, AbortFault, DelayFault, FaultRule, decide_faults


def test_no_rules_no_fault() -> None:
    assert decide_faults((), random.Random(1)) is NO_FAULT


def test_delay_fraction_is_honoured_and_seeded() -> None:
    rule = FaultRule("slow", delay=DelayFault(0.1, fraction=0.5))
    rng = random.Random(7)
    decisions = [decide_faults((rule,), rng) for _ in range(10_000)]
    delayed = sum(d.delay_s == 0.1 for d in decisions)
    assert 4800 < delayed < 5200
    assert all(d.delay_s in (0.0, 0.1) for d in decisions)
    again = random.Random(7)
    assert [decide_faults((rule,), again) for _ in range(10_000)] == decisions


def test_jitter_stays_within_bounds_and_never_negative() -> None:
    rule = FaultRule("jitter", delay=DelayFault(0.01, jitter_s=0.05))
    rng = random.Random(3)
    delays = [decide_faults((rule,), rng).delay_s for _ in range(2000)]
    assert min(delays) == 0.0
    assert max(delays) <= 0.06
    assert len(set(delays)) > 100


def test_delays_add_up_and_first_abort_wins() -> None:
    rules = (
        FaultRule("a", delay=DelayFault(0.1)),
        FaultRule("b", delay=DelayFault(0.2), abort=AbortFault(503)),
        FaultRule("c", abort=AbortFault(500)),
    )
    decision = decide_faults(rules, random.Random(0))
    assert decision.delay_s == pytest.approx(0.3)
    assert decision.abort_status == 503
    # "c" would abort too, but an earlier abort already decided the answer: it did nothing.
    assert decision.rule_names == ("a", "b")


def test_abort_with_zero_fraction_never_fires() -> None:
    rule = FaultRule("never", abort=AbortFault(503, fraction=0.0))
    rng = random.Random(5)
    assert all(not decide_faults((rule,), rng).injected for _ in range(1000))


def test_header_matched_rules_only_act_on_matching_requests() -> None:
    from meshcore.policy.routing import HeaderMatch, StringMatch

    rule = FaultRule(
        "tester",
        abort=AbortFault(503),
        headers=(HeaderMatch("x-user", StringMatch("prefix", "t")),),
    )
    rng = random.Random(1)
    assert decide_faults((rule,), rng, (("x-user", "alice"),)) is NO_FAULT
    assert decide_faults((rule,), rng, (("x-user", "tom"),)).abort_status == 503
    assert rule.applies((("x-user", "tim"),))
