"""What ``meshchaos run`` shows on the terminal: live progress during the run, the verdict after.

On a terminal, progress is a rich progress bar with the phase, the active faults and the dropped
requests, redrawn once a second, and the verdict a rich table. Elsewhere (CI logs, pipes) it is
one plain line per second on standard error and the plain-text table of
:func:`harness.verdict.render_verdict_table`, which logs keep readable. ``--quiet`` shows no
progress and the plain table.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

from harness.runner import Progress
from harness.verdict import render_rich_verdict, render_verdict_table

__all__ = ["plain_progress_line", "print_verdict", "progress_display"]

_PHASE_STYLES = {"warmup": "dim", "baseline": "green", "fault": "bold red", "recovery": "yellow"}


def plain_progress_line(progress: Progress) -> str:
    """Return the one-line form: ``[ 12.0s/22s] fault    dropped=0 faults=backend-slow``."""
    line = (
        f"[{progress.elapsed_s:5.1f}s/{progress.total_s:.0f}s] {progress.phase:<8} "
        f"dropped={progress.dropped} faults={','.join(progress.active_faults) or '-'}"
    )
    if progress.crashes:
        line += f" crashed={progress.crashes}"
    return line


@contextmanager
def progress_display(
    total_s: float, *, quiet: bool, stream: TextIO | None = None
) -> Iterator[Callable[[Progress], None] | None]:
    """Yield the progress callback of a run of ``total_s`` (None when ``quiet``); clean up after.

    ``total_s`` is warmup + duration: the bar is drawn to scale before the first report.
    """
    stream = sys.stderr if stream is None else stream
    if quiet:
        yield None
        return
    if not stream.isatty():

        def print_line(progress: Progress) -> None:
            print(plain_progress_line(progress), file=stream, flush=True)

        yield print_line
        return
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    bar = Bar(
        TextColumn("[{task.fields[style]}]{task.fields[phase]:<8}"),
        BarColumn(),
        TextColumn("{task.completed:>4.0f}/{task.total:.0f}s"),
        TimeRemainingColumn(),
        TextColumn("faults: {task.fields[faults]}  dropped: {task.fields[dropped]}"),
        console=Console(file=stream),
        auto_refresh=False,  # redrawn by each update: no refresh thread
        transient=True,
    )
    task = bar.add_task("run", total=total_s, phase="starting", style="dim", faults="-", dropped=0)

    def update(progress: Progress) -> None:
        bar.update(
            task,
            completed=progress.elapsed_s,
            total=progress.total_s,
            phase=progress.phase,
            style=_PHASE_STYLES.get(progress.phase, "none"),
            faults=",".join(progress.active_faults) or "-",
            dropped=progress.dropped,
        )
        bar.refresh()

    with bar:
        yield update


def print_verdict(summary: Mapping[str, Any], *, quiet: bool, stream: TextIO | None = None) -> None:
    """Print the verdict: a rich table on a terminal, else (or when ``quiet``) plain text."""
    stream = sys.stdout if stream is None else stream
    if quiet or not stream.isatty():
        print(render_verdict_table(summary, color=False), file=stream)
        return
    from rich.console import Console

    Console(file=stream).print(render_rich_verdict(summary))
