import random

import pytest

from meshcore.policy.retry import (
    BACKOFF_MAX_S,
    ISTIO_DEFAULT_RETRY,
    NO_RETRY,
    RetryPolicy,
    TryOutcome,
    backoff_s,
)

ALL = frozenset({"5xx", "gateway-error", "reset", "connect-failure", "retriable-4xx",
                 "retriable-status-codes"})  # fmt: skip


def policy(*tokens: str, codes: tuple[int, ...] = (), attempts: int = 2) -> RetryPolicy:
    return RetryPolicy(attempts, None, frozenset(tokens), frozenset(codes))


@pytest.mark.parametrize(
    ("outcome", "token"),
    [
        (TryOutcome(500), "5xx"),
        (TryOutcome(501), "5xx"),
        (TryOutcome(503, "connect-failure"), "connect-failure"),
        (TryOutcome(503, "reset"), "reset"),
        (TryOutcome(504, "timeout"), "reset"),
        (TryOutcome(409), "retriable-4xx"),
        (TryOutcome(418), "retriable-status-codes"),
        (TryOutcome(502), "gateway-error"),
    ],
)
def test_each_token_matches_what_envoy_says(outcome: TryOutcome, token: str) -> None:
    assert policy(token, codes=(418,)).decide(outcome, 0).retry
    others = ALL - {token}
    if token == "connect-failure":
        others -= {"5xx", "gateway-error", "reset"}
    if token == "reset":
        others -= {"5xx", "gateway-error"}
    if token == "gateway-error":
        others -= {"5xx"}
    assert not policy(*others, codes=(599,)).decide(outcome, 0).retry


def test_5xx_and_gateway_error_cover_tries_without_an_answer() -> None:
    for failure in ("connect-failure", "reset", "timeout"):
        for token in ("5xx", "gateway-error"):
            assert policy(token).decide(TryOutcome(503, failure), 0).retry
    assert not policy("gateway-error").decide(TryOutcome(500), 0).retry


def test_overflow_and_no_host_are_never_retried() -> None:
    everything = policy(*ALL, codes=(503,))
    decision = everything.decide(TryOutcome(503, "overflow"), 0)
    assert (decision.retry, decision.reason) == (False, "overflow is never retried")
    assert not everything.decide(TryOutcome(503, "no-host"), 0).retry


def test_istio_default_retries_connect_failures_and_503_only() -> None:
    default = ISTIO_DEFAULT_RETRY
    assert default.decide(TryOutcome(503), 0).retry
    assert default.decide(TryOutcome(503, "connect-failure"), 1).retry
    assert not default.decide(TryOutcome(503), 2).retry
    assert not default.decide(TryOutcome(500), 0).retry
    assert not default.decide(TryOutcome(503, "reset"), 0).retry


def test_reasons_and_exhaustion() -> None:
    five = policy("5xx")
    assert five.decide(TryOutcome(200), 0).reason == "success"
    assert five.decide(TryOutcome(404), 0).reason == "not retried"
    assert five.decide(TryOutcome(409), 0).reason == "409 not in retryOn"
    assert five.decide(TryOutcome(503, "reset"), 0).reason == "reset matched retryOn 5xx"
    used = five.decide(TryOutcome(500), 2)
    assert (used.retry, used.exhausted) == (False, True)
    assert used.reason == "500 matched retryOn 5xx, but all 2 retries are used"
    disabled = NO_RETRY.decide(TryOutcome(503), 0)
    assert (disabled.retry, disabled.exhausted) == (False, False)
    assert disabled.reason == "retries disabled (attempts: 0)"
    assert TryOutcome(504, "timeout").describe() == "per-try timeout"


def test_describe() -> None:
    assert policy("5xx", "reset").describe() == "2 retries on 5xx,reset"
    assert policy("retriable-status-codes", codes=(503, 502)).describe() == (
        "2 retries on retriable-status-codes (502,503)"
    )


def test_backoff_is_fully_jittered_exponential_and_capped() -> None:
    rng = random.Random(1)
    for retry, ceiling in ((1, 0.025), (2, 0.075), (3, 0.175), (4, 0.25), (10, 0.25)):
        draws = [backoff_s(retry, rng) for _ in range(2000)]
        assert 0 <= min(draws) < ceiling * 0.05
        assert ceiling * 0.95 < max(draws) <= ceiling <= BACKOFF_MAX_S
