"""The ``meshchaos`` command (DESIGN.md 4.1).

Exit codes of ``run``: 0 every SLO met; 1 an SLO failed; 2 invalid experiment or usage;
3 harness error; 130 interrupted (the partial report is still written).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.experiment import Experiment

__all__ = ["main"]

EXIT_PASS, EXIT_SLO_FAILED, EXIT_INVALID, EXIT_HARNESS_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshchaos", description="Service-mesh resilience experiments on a laptop."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run an experiment and write its report folder")
    run.add_argument("file", type=Path)
    run.add_argument("--out", type=Path, help="write the report exactly into this folder")
    run.add_argument("--mode", choices=("real", "simulate"))
    run.add_argument("--seed", type=int)
    run.add_argument("--junit", type=Path, help="also write the JUnit XML here")
    run.add_argument("--quiet", action="store_true", help="no progress, only the verdict")
    validate = commands.add_parser("validate", help="check an experiment file without running")
    validate.add_argument("file", type=Path)
    load = commands.add_parser("load", help="open-loop load at one URL on 127.0.0.1 (like wrk2)")
    from harness.loadcmd import add_arguments as add_load_arguments

    add_load_arguments(load)
    load.add_argument("--seed", type=int, default=1, help="seed of the arrival draws")
    proxy = commands.add_parser("proxy", help="run one standalone sidecar")
    proxy.add_argument("--config", required=True, type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; exit with the command's exit code."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        code = _run(args)
    elif args.command == "validate":
        code = _validate(args.file)
    elif args.command == "load":
        from harness.loadcmd import run_command

        code = run_command(args)
    else:
        from meshcore.standalone import run_standalone

        code = run_standalone(str(args.config))
    raise SystemExit(code)


def _load(file: Path, *, mode: str | None, seed: int | None) -> tuple[Experiment | None, int]:
    """Load, override and check an experiment; return it, or ``None`` and print problems."""
    from harness.experiment import ExperimentError, load_experiment, with_overrides
    from harness.support import unsupported

    try:
        experiment = load_experiment(file)
    except ExperimentError as error:
        for diagnostic in error.diagnostics:
            print(diagnostic, file=sys.stderr)
        return None, EXIT_INVALID
    except OSError as error:
        print(f"{file}: {error.strerror}", file=sys.stderr)
        return None, EXIT_INVALID
    for warning in experiment.warnings:
        print(warning, file=sys.stderr)
    experiment = with_overrides(experiment, seed=seed, mode=mode)
    problems = unsupported(experiment, mode=experiment.mode or "real")
    for problem in problems:
        print(problem, file=sys.stderr)
    return (None, EXIT_INVALID) if problems else (experiment, EXIT_PASS)


def _validate(file: Path) -> int:
    experiment, code = _load(file, mode=None, seed=None)
    if experiment is not None:
        print(f"{file}: valid")
    return code


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("meshchaos", "trio", "h11", "hypercorn", "hdrhistogram"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def _now() -> datetime:
    return datetime.now(UTC)


def _run(args: argparse.Namespace) -> int:
    import trio

    from harness.report import write_experiment_yaml, write_report
    from harness.runner import ExperimentRun
    from harness.summary import build_summary
    from harness.verdict import render_verdict_table

    experiment, code = _load(args.file, mode=args.mode, seed=args.seed)
    if experiment is None:
        return code
    started = _now()
    run_dir = args.out or Path("reports") / experiment.name / started.strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=True)
    experiment_file = run_dir / "experiment.yaml"
    write_experiment_yaml(experiment_file, experiment.document)
    run = ExperimentRun(experiment, experiment_file, run_dir, quiet=args.quiet)
    error = None
    try:
        trio.run(run.execute)
    except Exception as failure:  # any failure still gets its report
        error = _describe(failure)
    summary = build_summary(
        experiment,
        run.state,
        mode="real",
        started_at=started.isoformat(),
        finished_at=_now().isoformat(),
        versions=_versions(),
        error=error,
    )
    write_report(run_dir, summary, run.state.latency, start_epoch_s=started.timestamp())
    if args.junit:
        shutil.copyfile(run_dir / "junit.xml", args.junit)
    print(render_verdict_table(summary, color=sys.stdout.isatty()))
    print(f"report: {run_dir}")
    if error is not None:
        print(f"harness error: {error}", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    if run.state.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_PASS if summary["verdict"] == "pass" else EXIT_SLO_FAILED


def _describe(failure: BaseException) -> str:
    """Flatten trio's exception groups into the messages that matter."""
    if isinstance(failure, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in failure.exceptions)
    return f"{type(failure).__name__}: {failure}"


if __name__ == "__main__":
    main()
