"""Retry admission: may another retry start now (Envoy's ``max_retries`` and ``retry_budget``)?

Theory of operation: one :class:`RetryAdmission` per destination counts the requests in flight
to that destination (``request_started``/``request_ended``) and the retries in flight
(``try_start_retry``/``retry_ended``; a retry is in flight from the decision to retry, through
its back-off, until its try ends). Before a retry starts, the caller asks ``try_start_retry``:

- with a budget (Envoy's ``retry_budget``, which then replaces ``max_retries``), at most
  ``max(min_retry_concurrency, fraction x active requests)`` retries may be in flight;
- without one, at most ``http.maxRetries`` (unlimited by default, as in Istio).

A refusal is returned as its reason; the retry layer ends the request with the last answer
and flag ``URX`` and counts ``upstream_rq_retry_overflow``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from meshcore.policy.retry import RetryBudget

__all__ = ["RetryAdmission", "RetryAdmissionStats"]


@dataclass(frozen=True, slots=True)
class RetryAdmissionStats:
    """A snapshot of one destination's retry admission."""

    active_requests: int
    retries_in_flight: int
    limit: float


class RetryAdmission:
    """Counts requests and retries in flight to one destination and admits retries."""

    def __init__(self, *, max_retries: int | None = None, budget: RetryBudget | None = None):
        self._max_retries = max_retries
        self._budget = budget
        self.active_requests = 0
        self.retries_in_flight = 0

    def request_started(self) -> None:
        """Count a request (all its tries together) in flight."""
        self.active_requests += 1

    def request_ended(self) -> None:
        """Count a request as finished."""
        self.active_requests -= 1

    def limit(self) -> float:
        """Return how many retries may be in flight now (``inf`` when unlimited)."""
        if self._budget is not None:
            share = self._budget.fraction * self.active_requests
            return max(float(self._budget.min_retry_concurrency), share)
        return math.inf if self._max_retries is None else float(self._max_retries)

    def try_start_retry(self) -> str | None:
        """Admit one more retry (return ``None``) or return why it is refused."""
        if self.retries_in_flight + 1 > self.limit():
            if self._budget is not None:
                return "budget exhausted"
            return f"maxRetries ({self._max_retries}) retries already in flight"
        self.retries_in_flight += 1
        return None

    def retry_ended(self) -> None:
        """Count an admitted retry as finished."""
        self.retries_in_flight -= 1

    def statistics(self) -> RetryAdmissionStats:
        """Return the counts and the current limit."""
        return RetryAdmissionStats(self.active_requests, self.retries_in_flight, self.limit())
