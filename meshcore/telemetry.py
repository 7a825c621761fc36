"""What a sidecar counts: Istio's standard metrics and Envoy-style cluster counters.

:class:`SidecarTelemetry` holds one Prometheus registry per sidecar (never the global one: in
simulate mode many sidecars share a process) with Istio's metric names and labels, so existing
Istio dashboards read meshchaos sidecars, plus plain counters named after Envoy's cluster
statistics for ``GET /stats``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter

__all__ = ["RequestRecord", "SidecarTelemetry"]

# Istio's default buckets for istio_request_duration_milliseconds.
_DURATION_BUCKETS_MS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
    600000, 1800000, 3600000,
)  # fmt: skip
_SIZE_BUCKETS = (1, 10, 100, 1000, 10000, 100000, 1000000, 10000000)
_LABELS = (
    "reporter",
    "source_workload",
    "destination_workload",
    "destination_service_name",
    "response_code",
    "response_flags",
    "connection_security_policy",
)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One finished request as telemetry sees it."""

    reporter: str  # "source" (outbound) or "destination" (inbound), as in Istio
    source: str
    destination: str
    status: int
    flags: tuple[str, ...]
    duration_s: float
    request_bytes: int
    response_bytes: int
    security: str = "none"


class SidecarTelemetry:
    """Metrics of one sidecar, rendered for ``/metrics`` and ``/stats``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = PromCounter(
            "istio_requests", "Requests handled", _LABELS, registry=self.registry
        )
        self._duration = Histogram(
            "istio_request_duration_milliseconds",
            "Request duration",
            _LABELS,
            buckets=_DURATION_BUCKETS_MS,
            registry=self.registry,
        )
        self._request_bytes = Histogram(
            "istio_request_bytes", "Request body sizes", _LABELS, buckets=_SIZE_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self._response_bytes = Histogram(
            "istio_response_bytes", "Response body sizes", _LABELS, buckets=_SIZE_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.counters: Counter[str] = Counter()

    def record(self, record: RequestRecord) -> None:
        """Count one finished request."""
        labels = (
            record.reporter,
            record.source,
            record.destination,
            record.destination,
            str(record.status),
            ",".join(record.flags) or "-",
            record.security,
        )
        self._requests.labels(*labels).inc()
        self._duration.labels(*labels).observe(record.duration_s * 1000)
        self._request_bytes.labels(*labels).observe(record.request_bytes)
        self._response_bytes.labels(*labels).observe(record.response_bytes)
        direction = "outbound" if record.reporter == "source" else "inbound"
        prefix = f"cluster.{direction}|{record.destination}"
        self.counters[f"{prefix}.upstream_rq_total"] += 1
        self.counters[f"{prefix}.upstream_rq_{record.status // 100}xx"] += 1
        for flag in record.flags:
            self.counters[f"{prefix}.response_flags.{flag}"] += 1

    def prometheus_text(self) -> bytes:
        """Return the Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
