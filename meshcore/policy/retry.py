"""Retry decisions: is this try's outcome worth another try, and how long to wait first.

Istio's ``HTTPRetry`` with Envoy's meanings:

- ``attempts`` counts *retries*: ``attempts: 2`` allows up to three tries; ``0`` disables them.
- ``retryOn`` takes Envoy's ``x-envoy-retry-on`` tokens. ``5xx`` covers any 5xx answer and any
  try that got no answer (connect failure, reset, per-try timeout); ``gateway-error`` the same
  but only 502, 503 and 504 answers; ``reset`` a try without an answer (connect failure, reset,
  per-try timeout); ``connect-failure`` only connect failures; ``retriable-4xx`` a 409;
  ``retriable-status-codes`` the codes of ``retriableStatusCodes`` (Istio also lets numbers
  appear in ``retryOn`` itself, which adds them there). ``refused-stream`` and the gRPC tokens
  (``cancelled``, ``unavailable``, ...) are accepted for compatibility; over HTTP/1.1 no try
  ever ends in a refused stream or a gRPC status, so they never match.
- An overflow (503 ``UO``: the connection pool refused the try) is never retried (Envoy).
- Back-off is Envoy's fully jittered exponential: before retry ``n`` (1 for the first) wait a
  uniform draw from ``[0, min((2**n - 1) * base, max))``, base 25 ms, max 250 ms.

The default policy, when a destination sets no ``retries``, is Istio's: 2 retries on
``connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`` with 503.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_MAX_S",
    "GRPC_TOKENS",
    "ISTIO_DEFAULT_RETRY",
    "NO_RETRY",
    "RETRY_ON_TOKENS",
    "RetryBudget",
    "RetryDecision",
    "RetryPolicy",
    "TryOutcome",
    "backoff_s",
]

BACKOFF_BASE_S = 0.025
BACKOFF_MAX_S = 0.250  # Envoy: 10 x base
GRPC_TOKENS = frozenset(
    {"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"}
)
RETRY_ON_TOKENS = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "connect-failure",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        *GRPC_TOKENS,
    }
)
# Which tokens retry a try that got no HTTP answer, by how it failed (Envoy's
# RetryStateImpl::wouldRetryFromReset).
_NO_ANSWER_TOKENS = {
    "connect-failure": ("5xx", "gateway-error", "reset", "connect-failure"),
    "reset": ("5xx", "gateway-error", "reset"),
    "timeout": ("5xx", "gateway-error", "reset"),
}
_OUTCOME_WORDS = {
    "connect-failure": "connect failure",
    "reset": "reset",
    "timeout": "per-try timeout",
}


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """Envoy's ``retry_budget`` (an extension in meshchaos: Istio has no field for it).

    Retries in flight may not exceed ``max(min_retry_concurrency, fraction x active requests)``.
    """

    fraction: float = 0.20
    min_retry_concurrency: int = 3


@dataclass(frozen=True, slots=True)
class TryOutcome:
    """How one try ended.

    ``failure`` is ``""`` when the upstream (or an attempt-level fault) answered with
    ``status``; otherwise ``"connect-failure"``, ``"reset"``, ``"timeout"`` (per-try timeout),
    ``"overflow"`` (503 ``UO``) or ``"no-host"`` (503 ``UH``), and ``status`` is the local answer.
    """

    status: int
    failure: str = ""

    def describe(self) -> str:
        """Return the outcome as the decision trace shows it: ``"503"``, ``"reset"``..."""
        return _OUTCOME_WORDS.get(self.failure, self.failure) or str(self.status)


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Whether to retry, and why (the reason text goes into the access log's trace).

    ``exhausted`` is set when the outcome was retriable but every retry is used: Envoy then
    flags the answer ``URX``.
    """

    retry: bool
    reason: str
    exhausted: bool = False


# The decisions of most tries, made once (frozen, so shared).
_SUCCESS = RetryDecision(False, "success")
_NOT_RETRIED = RetryDecision(False, "not retried")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """One destination's retry policy (Istio ``HTTPRetry``), validated at load."""

    attempts: int = 2
    per_try_timeout_s: float | None = None
    retry_on: frozenset[str] = frozenset({"connect-failure", "refused-stream", "unavailable",
                                          "cancelled", "retriable-status-codes"})  # fmt: skip
    retriable_status_codes: frozenset[int] = frozenset({503})
    budget: RetryBudget | None = None

    def decide(self, outcome: TryOutcome, retries_done: int) -> RetryDecision:
        """Decide whether ``outcome``, after ``retries_done`` retries, calls for another try.

        Only the policy's own rules are applied here; the retry budget and ``maxRetries`` are
        admission questions the caller asks afterwards.
        """
        if outcome.failure == "overflow":
            return RetryDecision(False, "overflow is never retried")
        if outcome.failure == "no-host":
            return RetryDecision(False, "no healthy upstream to retry on")
        token = self.matching_token(outcome)
        if token is None:
            if not outcome.failure and outcome.status < 500 and outcome.status != 409:
                return _SUCCESS if outcome.status < 400 else _NOT_RETRIED
            return RetryDecision(False, f"{outcome.describe()} not in retryOn")
        matched = f"{outcome.describe()} matched retryOn {token}"
        if retries_done >= self.attempts:
            if self.attempts == 0:
                return RetryDecision(False, "retries disabled (attempts: 0)")
            used = f"{matched}, but all {self.attempts} retries are used"
            return RetryDecision(False, used, exhausted=True)
        return RetryDecision(True, matched)

    def matching_token(self, outcome: TryOutcome) -> str | None:
        """Return the first ``retryOn`` token (in a fixed order) that covers ``outcome``."""
        if outcome.failure:
            tokens = _NO_ANSWER_TOKENS.get(outcome.failure, ())
            return next((t for t in tokens if t in self.retry_on), None)
        status = outcome.status
        if status >= 500 and "5xx" in self.retry_on:
            return "5xx"
        if 502 <= status <= 504 and "gateway-error" in self.retry_on:
            return "gateway-error"
        if status == 409 and "retriable-4xx" in self.retry_on:
            return "retriable-4xx"
        if status in self.retriable_status_codes and "retriable-status-codes" in self.retry_on:
            return "retriable-status-codes"
        return None

    def describe(self) -> str:
        """Return the policy in Istio's words, for messages: ``2 retries on 5xx,reset``."""
        codes = ",".join(str(c) for c in sorted(self.retriable_status_codes))
        tokens = ",".join(sorted(self.retry_on))
        tokens += f" ({codes})" if "retriable-status-codes" in self.retry_on and codes else ""
        return f"{self.attempts} retries on {tokens}"


ISTIO_DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=0)


def backoff_s(retry: int, rng: random.Random) -> float:
    """Return the back-off before retry number ``retry`` (1 for the first), fully jittered."""
    ceiling = min((2**retry - 1) * BACKOFF_BASE_S, BACKOFF_MAX_S)
    return rng.uniform(0.0, ceiling)
