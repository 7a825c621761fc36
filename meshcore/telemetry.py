"""What a sidecar counts: Istio's standard metrics and Envoy-style cluster counters.

:class:`SidecarTelemetry` holds one Prometheus registry per sidecar (never the global one: in
simulate mode many sidecars share a process) with Istio's metric names and labels, so existing
Istio dashboards read meshchaos sidecars, plus plain counters named after Envoy's cluster
statistics for ``GET /stats`` (``cluster.outbound|payments.upstream_rq_retry``). The same
counters, and gauges that layers report through :meth:`SidecarTelemetry.add_gauges`, appear in
``/metrics`` under a ``meshchaos_`` prefix with the cluster as a label
(``meshchaos_upstream_rq_retry_total{cluster_name="outbound|payments"}``).

The Istio metrics are counted in plain Python (a request adds to a few list cells) and turned
into Prometheus families only when ``/metrics`` is scraped: prometheus-client's own counters
and histograms take a lock and walk their buckets on every update, several times the cost.
Unlike prometheus-client's own series, these carry no ``_created`` samples (Envoy's have none
either).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from itertools import accumulate
from typing import NamedTuple

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from meshcore.edges import EdgeRecorder

__all__ = ["GaugeSource", "RequestRecord", "SidecarTelemetry"]

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


class _Histogram:
    """One histogram series: a count per bucket (the last one is +Inf), and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count ``value`` in the first bucket whose bound is at least it (prometheus-client)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """Return the cumulative buckets as Prometheus writes them (``le`` label, count)."""
        les = [*map(floatToGoString, self.bounds), "+Inf"]
        return list(zip(les, map(float, accumulate(self.counts)), strict=True))


class _Series:
    """The Istio metrics of one label combination, and its /stats counter names."""

    __slots__ = ("duration", "labels", "names", "request_bytes", "requests", "response_bytes")

    def __init__(self, labels: tuple[str, ...], names: tuple[str, ...]) -> None:
        self.requests = 0
        self.duration = _Histogram(_DURATION_BUCKETS_MS)
        self.request_bytes = _Histogram(_SIZE_BUCKETS)
        self.response_bytes = _Histogram(_SIZE_BUCKETS)
        self.labels = labels  # the Prometheus label values, in _LABELS order
        self.names = names


class RequestRecord(NamedTuple):
    """One finished request as telemetry sees it.

    A named tuple, not a frozen dataclass: one is made per request, and a frozen dataclass's
    ``__init__`` (a ``object.__setattr__`` per field) cost several times as much.
    """

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
        self.counters: Counter[str] = Counter()
        self._gauge_sources: list[GaugeSource] = []
        self._counter_sources: list[GaugeSource] = []
        # By (reporter, source, destination, status, flags, security): the label values
        # are made once per series, not per request.
        self._series: dict[tuple[object, ...], _Series] = {}
        self.registry.register(_IstioCollector(self._series))
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
        reporter, source, destination, status, flags, duration_s, _, _, security = record
        key = (reporter, source, destination, status, flags, security)
        series = self._series.get(key)
        if series is None:
            labels = (reporter, source, destination, destination, str(status),
                      ",".join(flags) or "-", security)  # fmt: skip
            series = self._series[key] = _Series(labels, _stat_names(record))
        series.requests += 1
        series.duration.observe(duration_s * 1000)
        series.request_bytes.observe(record.request_bytes)
        series.response_bytes.observe(record.response_bytes)
        counters = self.counters
        for name in series.names:
            counters[name] += 1

    def prometheus_text(self) -> bytes:
        """Return the Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


def _stat_names(record: RequestRecord) -> tuple[str, ...]:
    """Return the /stats counters one request of ``record``'s label combination adds to."""
    direction = "outbound" if record.reporter == "source" else "inbound"
    prefix = f"cluster.{direction}|{record.destination}"
    return (
        f"{prefix}.upstream_rq_total",
        f"{prefix}.upstream_rq_{record.status // 100}xx",
        *(f"{prefix}.response_flags.{flag}" for flag in record.flags),
    )


class _IstioCollector(Collector):
    """Renders the Istio standard metrics from the series counted in plain Python."""

    def __init__(self, series: Mapping[tuple[object, ...], _Series]) -> None:
        self._series = series

    def collect(self) -> Iterator[Metric]:
        """Yield ``istio_requests_total`` and the three histograms, one sample set per series."""
        labels = list(_LABELS)
        requests = CounterMetricFamily("istio_requests", "Requests handled", labels=labels)
        histograms = (
            HistogramMetricFamily(
                "istio_request_duration_milliseconds", "Request duration", labels=labels
            ),
            HistogramMetricFamily("istio_request_bytes", "Request body sizes", labels=labels),
            HistogramMetricFamily("istio_response_bytes", "Response body sizes", labels=labels),
        )
        for series in list(self._series.values()):
            values = series.labels
            requests.add_metric(values, series.requests)
            for family, histogram in zip(
                histograms,
                (series.duration, series.request_bytes, series.response_bytes),
                strict=True,
            ):
                family.add_metric(values, histogram.buckets(), histogram.sum)
        yield requests
        yield from histograms


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
