"""The report folder of a run (DESIGN.md 4.3): every file written from the summary and state.

``summary.json`` is written first, so that whatever fails later (a plot, say) the machine-
readable result is already on disk.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from harness.hdrlog import write_hgrm, write_hlog
from harness.plots import Window, plot_latency_over_time
from harness.recorder import Recorder
from harness.verdict import render_markdown, write_junit

__all__ = ["fault_windows", "hgrm_name", "write_experiment_yaml", "write_report"]


def hgrm_name(scope: str) -> str:
    """Return the ``.hgrm`` file name of a scope: ``phase=fault.hgrm``, ``edge=a-b.hgrm``."""
    return re.sub(r"[^A-Za-z0-9=,._-]+", "-", scope) + ".hgrm"


def write_experiment_yaml(path: Path, document: Mapping[str, object]) -> None:
    """Write the experiment exactly as run (overrides and defaults resolved)."""
    path.write_text(yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True))


def fault_windows(summary: Mapping[str, Any], duration_s: float) -> list[Window]:
    """Return the fault windows to shade in plots, as they were really applied."""
    windows = []
    for fault in summary["faults"]:
        if fault["applied_at_s"] is None:
            continue
        end = fault["removed_at_s"] if fault["removed_at_s"] is not None else duration_s
        windows.append(Window(fault["name"], fault["kind"], fault["applied_at_s"], end))
    return windows


def write_report(
    run_dir: Path, summary: Mapping[str, Any], latency: Recorder, *, start_epoch_s: float
) -> None:
    """Write the report files of a run into ``run_dir``.

    That is ``summary.json``, ``junit.xml``, ``summary.md``, ``latency.hlog``, one ``.hgrm``
    per scope and the plots.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_junit(run_dir / "junit.xml", summary)
    (run_dir / "summary.md").write_text(render_markdown(summary))
    write_hlog(run_dir / "latency.hlog", latency, start_epoch_s=start_epoch_s)
    for scope in latency.scope_names():
        write_hgrm(run_dir / hgrm_name(scope), latency.scope(scope, 0.0).histogram)
    if "all" in latency.scope_names():
        plot_latency_over_time(
            run_dir / "latency.png",
            latency.intervals("all"),
            fault_windows(summary, summary["measured_s"]),
            title=f"{summary['experiment']['name']}: latency per second (from intended start)",
        )
