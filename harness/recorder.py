"""HDR latency histograms per scope and per interval (DESIGN.md 6).

The implementation lives in :mod:`meshcore.hdr`, because the sidecars record their edges with
it and meshcore never imports harness; this module keeps the harness's import path.
"""

from __future__ import annotations

from meshcore.hdr import (
    HIGHEST_US,
    LOWEST_US,
    SIGNIFICANT_DIGITS,
    Interval,
    Recorder,
    ScopeStats,
    histogram_mean_us,
    histogram_stddev_us,
    new_histogram,
    value_at_percentile_us,
)

__all__ = [
    "HIGHEST_US",
    "LOWEST_US",
    "SIGNIFICANT_DIGITS",
    "Interval",
    "Recorder",
    "ScopeStats",
    "histogram_mean_us",
    "histogram_stddev_us",
    "new_histogram",
    "value_at_percentile_us",
]
