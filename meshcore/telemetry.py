"""What a sidecar counts: Istio's standard metrics and Envoy-style cluster counters.

:class:`SidecarTelemetry` holds one Prometheus registry per sidecar (never the global one: in
simulate mode many sidecars share a process) with Istio's metric names and labels, so existing
Istio dashboards read meshchaos sidecars, plus plain counters named after Envoy's cluster
statistics for ``GET /stats`` (``cluster.outbound|payments.upstream_rq_retry``). The same
counters, and gauges that layers report through :meth:`SidecarTelemetry.add_gauges`, appear in
``/metrics`` under a ``meshchaos_`` prefix with the cluster as a label
(``meshchaos_upstream_rq_retry_total{cluster_name="outbound|payments"}``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from meshcore.edges import EdgeRecorder

__all__ = ["GaugeSource", "RequestRecord", "SidecarTelemetry"]

# The Prometheus children and /stats counter names of one label combination.
_Series = tuple[PromCounter, Histogram, Histogram, Histogram, tuple[str, ...]]
# Returns current values by /stats name, e.g. {"cluster.outbound|payments.
# outlier_detection.ejections_active": 1}.
GaugeSource = Callable[[], Mapping[str, float]]

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
        self._gauge_sources: list[GaugeSource] = []
        self._counter_sources: list[GaugeSource] = []
        self._series: dict[tuple[str, ...], _Series] = {}
        self.registry.register(_MeshchaosCollector(self))
        self.edges = EdgeRecorder()  # per-edge HDR histograms, GET /stats/edges

    def count(self, destination: str, stat: str, amount: int = 1) -> None:
        """Add ``amount`` to Envoy cluster statistic ``stat`` of outbound ``destination``."""
        self.counters[f"cluster.outbound|{destination}.{stat}"] += amount

    def add_gauges(self, source: GaugeSource) -> None:
        """Report the gauges ``source`` returns in ``/stats`` and ``/metrics``."""
        self._gauge_sources.append(source)

    def add_counters(self, source: GaugeSource) -> None:
        """Report counters kept elsewhere (faults injected, ...) in ``/stats`` and ``/metrics``."""
        self._counter_sources.append(source)

    def gauges(self) -> dict[str, float]:
        """Return every gauge's current value by its ``/stats`` name."""
        return _merged(self._gauge_sources, {})

    def all_counters(self) -> dict[str, float]:
        """Return the counters of this object and of every counter source."""
        return _merged(self._counter_sources, dict(self.counters))

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
        # prometheus-client looks a label tuple up (and validates it) on every .labels() call:
        # keep the four children of each tuple, and the /stats names, on the hot path instead.
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = self._new_series(record, labels)
        requests, duration, request_bytes, response_bytes, names = series
        requests.inc()
        duration.observe(record.duration_s * 1000)
        request_bytes.observe(record.request_bytes)
        response_bytes.observe(record.response_bytes)
        for name in names:
            self.counters[name] += 1

    def _new_series(self, record: RequestRecord, labels: tuple[str, ...]) -> _Series:
        direction = "outbound" if record.reporter == "source" else "inbound"
        prefix = f"cluster.{direction}|{record.destination}"
        names = (
            f"{prefix}.upstream_rq_total",
            f"{prefix}.upstream_rq_{record.status // 100}xx",
            *(f"{prefix}.response_flags.{flag}" for flag in record.flags),
        )
        return (
            self._requests.labels(*labels),
            self._duration.labels(*labels),
            self._request_bytes.labels(*labels),
            self._response_bytes.labels(*labels),
            names,
        )

    def prometheus_text(self) -> bytes:
        """Return the Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class _MeshchaosCollector(Collector):
    """Renders the Envoy-named counters and gauges as ``meshchaos_*`` Prometheus metrics.

    ``cluster.<cluster>.<stat>`` becomes ``meshchaos_<stat>`` (dots as underscores) with label
    ``cluster_name``; other names (``fault.delays_injected``) become ``meshchaos_<name>``.
    Response-flag counters are left out: ``istio_requests_total`` carries them as a label.
    """

    def __init__(self, telemetry: SidecarTelemetry) -> None:
        self._telemetry = telemetry

    def collect(self) -> Iterator[Metric]:
        """Yield one metric family per statistic name."""
        yield from _families(self._telemetry.all_counters(), CounterMetricFamily)
        yield from _families(self._telemetry.gauges(), GaugeMetricFamily)


def _families(
    values: Mapping[str, float], kind: type[CounterMetricFamily] | type[GaugeMetricFamily]
) -> Iterator[Metric]:
    families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
    for name, value in sorted(values.items()):
        cluster = ""
        if name.startswith("cluster."):
            cluster, _, name = name.removeprefix("cluster.").partition(".")
        if name.startswith("response_flags."):
            continue
        metric = "meshchaos_" + name.replace(".", "_").replace("-", "_")
        family = families.get(metric)
        if family is None:
            family = kind(metric, f"Envoy statistic {name}", labels=["cluster_name"])
            families[metric] = family
        family.add_metric([cluster], value)
    yield from families.values()


def _merged(sources: list[GaugeSource], values: dict[str, float]) -> dict[str, float]:
    for source in sources:
        values.update(source())
    return values
