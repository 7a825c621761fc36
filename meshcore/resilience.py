"""The per-destination policy state of one outbound sidecar, built once from its config.

Balancers, outlier detectors, failure-accrual breakers, retry admission and pool limits hold
state, and that state belongs to one client sidecar and one destination, as in Envoy: never
shared between sidecars, so ejection and budget arithmetic is what production would do. This
module builds them from a :class:`~meshcore.config.SidecarConfig` and reports their gauges
(ejections active, breaker states, requests pending) for ``/stats`` and ``/metrics``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from meshcore.config import SidecarConfig
from meshcore.model import Endpoint
from meshcore.policy.accrual import BreakerState, FailureAccrual
from meshcore.policy.balancer import Balancer, make_balancer
from meshcore.policy.budget import RetryAdmission
from meshcore.policy.limits import ConnectionPoolSettings, PoolLimits
from meshcore.policy.outlier import OutlierDetector
from meshcore.policy.retry import RetryPolicy
from meshcore.policy.routing import HttpRoute, subset_members

__all__ = ["OutboundPolicies"]


@dataclass(frozen=True, slots=True)
class OutboundPolicies:
    """Every stateful policy object of one sidecar's outbound side, by destination."""

    routes: dict[str, tuple[HttpRoute, ...]]
    members: dict[tuple[str, str], tuple[Endpoint, ...]]
    balancers: dict[str, Balancer]
    detectors: dict[str, OutlierDetector]
    accruals: dict[str, FailureAccrual]
    admissions: dict[str, RetryAdmission]
    limits: dict[str, PoolLimits]
    retries: dict[str, RetryPolicy]
    timeouts: dict[str, float | None]
    pool_settings: dict[str, ConnectionPoolSettings]

    @classmethod
    def build(
        cls, config: SidecarConfig, now: float, rng: Callable[[str], random.Random]
    ) -> OutboundPolicies:
        """Build the state of every destination of ``config`` at time ``now``."""
        policies = {name: config.policy(name) for name in config.destinations}
        members: dict[tuple[str, str], tuple[Endpoint, ...]] = {}
        for name, endpoints in config.destinations.items():
            subsets = policies[name].subsets
            for subset in ("", *subsets):
                members[(name, subset)] = tuple(
                    e for e in endpoints
                    if subset_members(subsets, subset, config.endpoint_labels.get(str(e), {}))
                )  # fmt: skip
        return cls(
            routes={name: policy.http for name, policy in policies.items()},
            members=members,
            balancers={name: make_balancer(p.load_balancer) for name, p in policies.items()},
            detectors={
                name: OutlierDetector(p.outlier_detection, config.destinations[name], now)
                for name, p in policies.items()
                if p.outlier_detection is not None
            },
            accruals={
                name: FailureAccrual(
                    p.failure_accrual, config.destinations[name], rng(f"accrual:{name}")
                )
                for name, p in policies.items()
                if p.failure_accrual is not None
            },
            admissions={
                name: RetryAdmission(
                    max_retries=p.connection_pool.max_retries, budget=p.retries.budget
                )
                for name, p in policies.items()
            },
            limits={
                name: PoolLimits(p.connection_pool)
                for name, p in policies.items()
                if p.connection_pool.limits_requests
            },
            retries={name: p.retries for name, p in policies.items()},
            timeouts={name: p.timeout_s for name, p in policies.items()},
            pool_settings={name: p.connection_pool for name, p in policies.items()},
        )

    def gauges(self, now: float) -> dict[str, float]:
        """Return the gauges of every destination by their ``/stats`` names."""
        values: dict[str, float] = {}
        for name, detector in self.detectors.items():
            stats = detector.statistics(now)
            prefix = f"cluster.outbound|{name}.outlier_detection"
            values[f"{prefix}.ejections_active"] = stats.ejections_active
            values[f"{prefix}.ejections_total"] = stats.ejections_total
        for name, accrual in self.accruals.items():
            for host, state in accrual.states().items():
                # 0 closed, 1 half-open, 2 open (rejecting): higher is worse.
                level = _BREAKER_LEVELS[BreakerState(state)]
                values[f"cluster.outbound|{name}.failure_accrual.{host}.state"] = level
        for name, limits in self.limits.items():
            stats_ = limits.statistics()
            values[f"cluster.outbound|{name}.upstream_rq_active"] = stats_.active
            values[f"cluster.outbound|{name}.upstream_rq_pending_active"] = stats_.pending
        for name, admission in self.admissions.items():
            values[f"cluster.outbound|{name}.upstream_rq_retry_active"] = (
                admission.retries_in_flight
            )
        return values


_BREAKER_LEVELS = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
