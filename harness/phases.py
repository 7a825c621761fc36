"""The phases of a run, from its fault schedule (pure).

``baseline`` is before the first fault starts, ``fault`` while any fault is active, and
``recovery`` after the last fault ends; ``all`` is the whole measured time. Each window of a
recurring fault (``every``/``for``) is a window of the ``fault`` phase. Times are seconds
after the start of measurement (warmup excluded). Between two faults that do not overlap, the
time belongs to no phase but ``all``. A run without faults is all baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.experiment import Experiment

__all__ = ["Phase", "phase_at", "phase_windows"]


@dataclass(frozen=True, slots=True)
class Phase:
    """One window of a phase."""

    name: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        """Return the window's length."""
        return self.end_s - self.start_s


def _fault_windows(experiment: Experiment) -> list[tuple[float, float]]:
    """Return the union of the faults' active windows (recurring ones each), merged and sorted."""
    spans = sorted(window for f in experiment.faults for window in f.windows(experiment.duration_s))
    merged: list[tuple[float, float]] = []
    for start, stop in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def phase_windows(experiment: Experiment) -> list[Phase]:
    """Return the windows of ``baseline``, ``fault`` and ``recovery``, in time order."""
    end = experiment.duration_s
    faults = _fault_windows(experiment)
    if not faults:
        return [Phase("baseline", 0.0, end)]
    windows = [Phase("baseline", 0.0, faults[0][0])] if faults[0][0] > 0 else []
    windows += [Phase("fault", start, stop) for start, stop in faults]
    if faults[-1][1] < end:
        windows.append(Phase("recovery", faults[-1][1], end))
    return windows


def phase_at(windows: list[Phase], t_s: float) -> str | None:
    """Return the phase that ``t_s`` falls in (``None`` between faults)."""
    for window in windows:
        if window.start_s <= t_s < window.end_s:
            return window.name
    return None
