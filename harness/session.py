"""Run one experiment and write its report: the sequence that the CLI and the pytest plugin share.

:func:`prepare` turns what a caller has (a file path, a document as a dict, or a loaded
:class:`~harness.experiment.Experiment`) plus overrides into a checked, runnable experiment;
:func:`run_experiment` runs it in the current Trio run and writes the report folder (DESIGN.md
4.3), whatever happens to the run; :class:`RunResult` is what a caller reads back: the summary,
the exit code of DESIGN.md 4.1, scope statistics and a readable account of the failures.

Nothing here imports pytest: :class:`Meshchaos` is the object the plugin's ``meshchaos``
fixture hands to a test, and works as well from any Trio program.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from harness.experiment import (
    Experiment,
    ExperimentError,
    load_experiment,
    parse_experiment,
    with_overrides,
)
from harness.recorder import Recorder, ScopeStats
from harness.report import write_experiment_yaml, write_report
from harness.runner import ExperimentRun, Progress
from harness.simulate import in_simulation, run_simulated_in_thread
from harness.summary import build_summary, scope_durations
from harness.support import unsupported
from harness.verdict import explain
from meshcore.units import parse_duration

__all__ = [
    "DEFAULT_MODE",
    "Meshchaos",
    "RunResult",
    "default_run_dir",
    "describe",
    "prepare",
    "run_experiment",
    "versions",
]

DEFAULT_MODE = "real"
"""The mode of an experiment that names none, for ``meshchaos run`` (DESIGN.md: real when absent).

The pytest plugin runs in simulate mode unless told otherwise (``--meshchaos-mode``)."""

EXIT_PASS, EXIT_SLO_FAILED, EXIT_HARNESS_ERROR, EXIT_INTERRUPTED = 0, 1, 3, 130

ExperimentSource = str | os.PathLike[str] | Mapping[str, Any] | Experiment
"""What :func:`prepare` accepts: a file path, a document (the YAML's shape as a dict), or an
experiment already loaded."""

_OVERRIDES = ("duration", "warmup", "seed", "mode", "network_latency", "network_jitter")


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of one run: its summary (``summary.json``), report folder and measurements."""

    experiment: Experiment
    run_dir: Path
    summary: Mapping[str, Any]
    latency: Recorder
    durations: Mapping[str, float]

    @property
    def passed(self) -> bool:
        """Tell whether every ``error`` SLO held and the run finished (the verdict is pass)."""
        return bool(self.summary["verdict"] == "pass")

    @property
    def exit_code(self) -> int:
        """Return the exit code of ``meshchaos run`` for this run (DESIGN.md 4.1)."""
        if self.summary.get("error"):
            return EXIT_HARNESS_ERROR
        if self.summary.get("interrupted"):
            return EXIT_INTERRUPTED
        return EXIT_PASS if self.passed else EXIT_SLO_FAILED

    def scope(self, name: str) -> ScopeStats:
        """Return one scope's statistics: ``requests``, ``error_rate``, ``percentile_ms(99.9)``.

        ``name`` is a scope name of ``summary.json`` (``all``, ``phase=fault``, ...); a
        KeyError lists the recorded ones.
        """
        if name not in self.durations:
            known = ", ".join(self.durations) or "none"
            raise KeyError(f"no scope {name!r} in this run; recorded scopes: {known}")
        return self.latency.scope(name, self.durations[name])

    def explain(self) -> str:
        """Return a readable account of the verdict and every SLO that failed."""
        return explain(self.summary) + f"\nreport: {self.run_dir}"


def prepare(source: ExperimentSource, **overrides: object) -> Experiment:
    """Load ``source`` and apply ``overrides``; raise ExperimentError if it cannot run.

    Overrides: ``duration`` and ``warmup`` (``"3s"`` or seconds), ``seed`` (an int), ``mode``
    (``real`` or ``simulate``), ``network_latency`` and ``network_jitter`` (``"1.3ms"`` or
    seconds: simulate mode's ``spec.network.latency`` and ``jitter``, e.g. from ``meshchaos
    calibrate``). A ``None`` override is ignored. The result is checked as a file is
    (``FILE:LINE:COL`` diagnostics), and against what this build can run.
    """
    unknown = sorted(set(overrides) - set(_OVERRIDES))
    if unknown:
        raise TypeError(f"unknown override(s) {', '.join(unknown)}; known: {', '.join(_OVERRIDES)}")
    if isinstance(source, Experiment):
        experiment = source
    elif isinstance(source, Mapping):
        text = yaml.safe_dump(dict(source), sort_keys=False)
        experiment = parse_experiment(text, "<experiment document>")
    else:
        experiment = load_experiment(source)
    seed, mode = overrides.get("seed"), overrides.get("mode")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if mode is not None and not isinstance(mode, str):
        raise TypeError(f"mode must be 'real' or 'simulate', got {mode!r}")
    experiment = with_overrides(
        experiment,
        seed=seed,
        mode=mode,
        duration_s=_seconds(overrides.get("duration")),
        warmup_s=_seconds(overrides.get("warmup")),
        network_latency_s=_seconds(overrides.get("network_latency")),
        network_jitter_s=_seconds(overrides.get("network_jitter")),
    )
    problems = unsupported(experiment, mode=experiment.mode or DEFAULT_MODE)
    if problems:
        raise ExperimentError(problems)
    return experiment


def _seconds(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return parse_duration(value)


def default_run_dir(experiment: Experiment, started: datetime) -> Path:
    """Return ``reports/<experiment name>/<UTC timestamp>/`` (DESIGN.md 4.1)."""
    return Path("reports") / experiment.name / started.strftime("%Y%m%dT%H%M%SZ")


def versions() -> dict[str, str]:
    """Return the versions that ``summary.json`` records."""
    found = {"python": platform.python_version()}
    for package in ("meshchaos", "trio", "h11", "hypercorn", "hdrhistogram"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "unknown"
    return found


def describe(failure: BaseException) -> str:
    """Flatten trio's exception groups into the messages that matter."""
    if isinstance(failure, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in failure.exceptions)
    return f"{type(failure).__name__}: {failure}"


def _now() -> datetime:
    return datetime.now(UTC)


async def run_experiment(
    experiment: Experiment,
    run_dir: Path | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunResult:
    """Run ``experiment`` (already :func:`prepare`-d) and write its report folder.

    ``run_dir`` defaults to :func:`default_run_dir`. A failure of the run itself is not
    raised: it is the summary's ``error`` (exit code 3), and the report is written anyway.
    A simulate-mode experiment awaited from a program's own Trio run (a test) runs in a Trio
    run of its own, with simulate mode's clock (:func:`harness.simulate.run_simulated_in_thread`).
    """
    if experiment.mode == "simulate" and not in_simulation():
        again = partial(run_experiment, experiment, run_dir, on_progress=on_progress)
        return await run_simulated_in_thread(again, seed=experiment.seed)
    started = _now()
    run_dir = run_dir if run_dir is not None else default_run_dir(experiment, started)
    run_dir.mkdir(parents=True, exist_ok=True)
    experiment_file = run_dir / "experiment.yaml"
    write_experiment_yaml(experiment_file, experiment.document)
    run = ExperimentRun(experiment, experiment_file, run_dir, on_progress=on_progress)
    error = None
    try:
        await run.execute()
    except Exception as failure:  # any failure still gets its report
        error = describe(failure)
    summary = build_summary(
        experiment,
        run.state,
        mode=experiment.mode or DEFAULT_MODE,
        started_at=started.isoformat(),
        finished_at=_now().isoformat(),
        versions=versions(),
        error=error,
    )
    write_report(run_dir, summary, run.state.latency, start_epoch_s=started.timestamp())
    return RunResult(experiment, run_dir, summary, run.state.latency, scope_durations(run.state))


class Meshchaos:
    """Runs experiments from a test (the plugin's ``meshchaos`` fixture), reports under ``root``.

    Each run writes its report folder to ``root/<experiment name>`` (``-2``, ``-3``, ... for
    later runs of the same experiment). ``mode`` (from ``--meshchaos-mode``) overrides the
    experiments' own mode unless a run passes ``mode=`` itself.
    """

    def __init__(self, root: Path, *, mode: str | None = None) -> None:
        self.root = root
        self.mode = mode
        self.results: list[RunResult] = []

    async def run(self, source: ExperimentSource, **overrides: object) -> RunResult:
        """Run an experiment (a path, a dict document or an Experiment) and return its result.

        Overrides: ``duration``, ``warmup``, ``seed``, ``mode``, ``network_latency``,
        ``network_jitter`` (see :func:`prepare`). An invalid experiment raises ExperimentError
        before anything runs; a run whose SLOs fail does not raise: assert on ``result.passed``,
        with ``result.explain()`` as the message.
        """
        if overrides.get("mode") is None:
            overrides["mode"] = self.mode
        experiment = prepare(source, **overrides)
        run_dir = self.root / experiment.name
        number = 2
        while run_dir.exists():
            run_dir, number = self.root / f"{experiment.name}-{number}", number + 1
        result = await run_experiment(experiment, run_dir)
        self.results.append(result)
        return result
