"""The retry layer: tries, per-try timeouts, back-off and retry admission, for one request.

Each try gets a fresh copy of the request with ``attempt`` and ``x-envoy-attempt-count`` set
and goes down to the balancer, which avoids the hosts already tried (Envoy's previous_hosts
predicate) through the request's trace. After each try the destination's
:class:`~meshcore.policy.retry.RetryPolicy` decides, and a retry it wants must still be
admitted by the :class:`~meshcore.policy.budget.RetryAdmission` (budget or ``maxRetries``).
A request that ends because its retries are used up, or because admission refused one, keeps
the last answer and gets flag ``URX``. Every decision and its reason goes into the trace.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

import trio

from meshcore.layers.base import Service
from meshcore.model import Request, Response
from meshcore.policy.budget import RetryAdmission
from meshcore.policy.retry import ISTIO_DEFAULT_RETRY, RetryPolicy, TryOutcome, backoff_s
from meshcore.trace import RequestTrace

__all__ = ["Count", "RetryLayer", "outcome_of"]

Count = Callable[[str, str], None]  # (destination, Envoy stat name)

_ATTEMPT_COUNT = "x-envoy-attempt-count"
# Envoy response flags that mean the try got no HTTP answer, and how it failed.
_FAILURES = {"UO": "overflow", "UH": "no-host", "UF": "connect-failure", "UC": "reset"}


def outcome_of(response: Response) -> TryOutcome:
    """Classify a try's response (a local answer's flag says how the try failed)."""
    for flag in response.flags:
        failure = _FAILURES.get(flag)
        if failure is not None:
            return TryOutcome(response.status, failure)
    outcome = _ANSWERED.get(response.status)
    if outcome is None:
        outcome = _ANSWERED[response.status] = TryOutcome(response.status)
    return outcome


# The outcome of a try answered with each status, made once (frozen, so shared): at most one
# per status code.
_ANSWERED: dict[int, TryOutcome] = {}


class RetryLayer:
    """Retries each request as its destination's policy and admission allow."""

    def __init__(
        self,
        inner: Service,
        policies: Mapping[str, RetryPolicy],
        admissions: Mapping[str, RetryAdmission],
        rng: random.Random,
        count: Count,
    ) -> None:
        self.inner = inner
        self._policies = policies
        self._admissions = admissions
        self._rng = rng
        self._count = count

    async def __call__(self, request: Request) -> Response:
        """Send ``request``, retrying it as the policy says."""
        destination = request.destination
        policy = self._policies.get(destination, ISTIO_DEFAULT_RETRY)
        admission = self._admissions[destination]
        trace = request.trace
        if trace is None:
            trace = RequestTrace()
            request = request.replace(trace=trace)
        admission.request_started()
        retrying = False
        retries = 0
        # Every try carries its own attempt count; the app's (seldom any) is dropped once.
        base = request.headers
        if request.header(_ATTEMPT_COUNT) is not None:
            base = tuple(h for h in base if h[0] != _ATTEMPT_COUNT)
        try:
            while True:
                number = retries + 1
                record = trace.start(number, trio.current_time())
                headers = (*base, (_ATTEMPT_COUNT, str(number)))
                attempt = request.replace(headers=headers, attempt=number)
                response, outcome = await self._try(attempt, policy, destination)
                if retrying:
                    admission.retry_ended()
                    retrying = False
                now = trio.current_time()
                record.outcome = _describe(response, outcome)
                record.duration_s = now - record.started
                decision = policy.decide(outcome, retries)
                if not decision.retry:
                    if decision.exhausted:
                        self._count(destination, "upstream_rq_retry_limit_exceeded")
                        response = response.with_flag("URX")
                    elif retries and decision.reason == "success":
                        self._count(destination, "upstream_rq_retry_success")
                    record.decision = (
                        "done" if decision.reason == "success" else f"no retry: {decision.reason}"
                    )
                    return response
                refusal = admission.try_start_retry()
                if refusal is not None:
                    self._count(destination, "upstream_rq_retry_overflow")
                    record.decision = f"no retry: {refusal}"
                    return response.with_flag("URX")
                retrying = True
                retries += 1
                self._count(destination, "upstream_rq_retry")
                delay_s = backoff_s(retries, self._rng)
                record.decision = f"retry: {decision.reason} (back-off {delay_s * 1000:.1f}ms)"
                await trio.sleep(delay_s)
        finally:
            if retrying:
                admission.retry_ended()
            admission.request_ended()

    async def _try(
        self, attempt: Request, policy: RetryPolicy, destination: str
    ) -> tuple[Response, TryOutcome]:
        timeout_s = policy.per_try_timeout_s
        if timeout_s is None:
            response = await self.inner(attempt)
            return response, outcome_of(response)
        with trio.move_on_after(timeout_s):
            response = await self.inner(attempt)
            return response, outcome_of(response)
        # A per-try timeout counts as a reset (retried under 5xx, gateway-error and reset).
        self._count(destination, "upstream_rq_per_try_timeout")
        trace = attempt.trace
        host = trace.current.host if trace is not None and trace.current is not None else "-"
        response = Response.local(504, "upstream request timeout\n", "UT")
        return response.replace(upstream=host if host != "-" else ""), TryOutcome(504, "timeout")


def _describe(response: Response, outcome: TryOutcome) -> str:
    flags = ",".join(response.flags)
    text = outcome.describe()
    if outcome.failure:
        return f"{text} ({response.status} {flags})"
    return f"{text} {flags}" if flags else text
