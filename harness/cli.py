"""The ``meshchaos`` command (DESIGN.md 4.1).

Exit codes of ``run``: 0 every SLO met; 1 an SLO failed; 2 invalid experiment or usage;
3 harness error; 130 interrupted (the partial report is still written).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

# The parser is built on every command: it imports the arguments, never a command's module.
from harness.cliargs import (
    add_calibrate_arguments,
    add_compare_arguments,
    add_load_arguments,
    network_duration,
)

if TYPE_CHECKING:
    from harness.experiment import Experiment

__all__ = ["main"]

EXIT_PASS, EXIT_INVALID = 0, 2  # run's other codes come from its result (harness.session)


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
    run.add_argument(
        "--network-latency",
        type=network_duration,
        metavar="DURATION",
        help="simulate mode: one-way latency per hop between pods (spec.network.latency), "
        "e.g. what `meshchaos calibrate` measured",
    )
    run.add_argument(
        "--network-jitter",
        type=network_duration,
        metavar="DURATION",
        help="simulate mode: each hop's latency varies uniformly by up to this either way "
        "(spec.network.jitter), e.g. what `meshchaos calibrate` measured",
    )
    run.add_argument("--junit", type=Path, help="also write the JUnit XML here")
    run.add_argument("--quiet", action="store_true", help="no progress, only the verdict")
    validate = commands.add_parser("validate", help="check an experiment file without running")
    validate.add_argument("file", type=Path)
    load = commands.add_parser("load", help="open-loop load at one URL on 127.0.0.1 (like wrk2)")
    add_load_arguments(load)
    load.add_argument("--seed", type=int, default=1, help="seed of the arrival draws")
    report = commands.add_parser("report", help="re-render a report folder's plots and HTML")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    compare = commands.add_parser("compare", help="overlay and tabulate two report folders")
    add_compare_arguments(compare)
    calibrate = commands.add_parser(
        "calibrate", help="measure what a hop between pods costs here in real mode"
    )
    add_calibrate_arguments(calibrate)
    proxy = commands.add_parser("proxy", help="run one standalone sidecar")
    proxy.add_argument("--config", required=True, type=Path)
    ca = commands.add_parser("ca", help="mesh certificate authority for standalone sidecars")
    from harness.cacmd import add_arguments as add_ca_arguments

    add_ca_arguments(ca)
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
    elif args.command == "report":
        from harness.report import report_command

        code = report_command(args.run_dir)
    elif args.command == "compare":
        from harness.compare import run_command as run_compare_command

        code = run_compare_command(args)
    elif args.command == "calibrate":
        code = _calibrate(args)
    elif args.command == "ca":
        from harness.cacmd import run_command as run_ca_command

        code = run_ca_command(args)
    else:
        from meshcore.standalone import run_standalone

        code = run_standalone(str(args.config))
    raise SystemExit(code)


def _load(
    file: Path,
    *,
    mode: str | None,
    seed: int | None,
    network_latency_s: float | None = None,
    network_jitter_s: float | None = None,
) -> tuple[Experiment | None, int]:
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
    experiment = with_overrides(
        experiment,
        seed=seed,
        mode=mode,
        network_latency_s=network_latency_s,
        network_jitter_s=network_jitter_s,
    )
    problems = unsupported(experiment, mode=experiment.mode or "real")
    for problem in problems:
        print(problem, file=sys.stderr)
    return (None, EXIT_INVALID) if problems else (experiment, EXIT_PASS)


def _validate(file: Path) -> int:
    experiment, code = _load(file, mode=None, seed=None)
    if experiment is not None:
        print(f"{file}: valid")
    return code


def _run(args: argparse.Namespace) -> int:
    from harness.session import run_experiment
    from harness.simulate import run_in_mode
    from harness.terminal import print_verdict, progress_display

    experiment, code = _load(
        args.file,
        mode=args.mode,
        seed=args.seed,
        network_latency_s=args.network_latency,
        network_jitter_s=args.network_jitter,
    )
    if experiment is None:
        return code
    total_s = experiment.warmup_s + experiment.duration_s
    with progress_display(total_s, quiet=args.quiet) as on_progress:
        # Simulate mode runs under a virtual clock and a reproducible scheduler (harness.simulate).
        main = partial(run_experiment, experiment, args.out, on_progress=on_progress)
        result = run_in_mode(main, experiment)
    if args.junit:
        shutil.copyfile(result.run_dir / "junit.xml", args.junit)
    print_verdict(result.summary, quiet=args.quiet)
    print(f"report: {result.run_dir}")
    for crash in result.summary.get("crashes", []):
        print(f"crash: {crash}", file=sys.stderr)
    if result.summary.get("error"):
        print(f"harness error: {result.summary['error']}", file=sys.stderr)
    return result.exit_code


def _calibrate(args: argparse.Namespace) -> int:
    from harness.calibrate import HOPS, SCRIPTED_MS, calibrate
    from harness.session import EXIT_HARNESS_ERROR

    if not args.quiet:
        print(f"calibrating: {args.duration:g} s of real mode with mtls {args.mtls} "
              "(and 2 s of warm-up) ...")  # fmt: skip
    try:
        found = calibrate(args.duration, args.out, mtls=args.mtls)
    except RuntimeError as error:
        print(f"meshchaos calibrate: {error}", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    latency, jitter = f"{found.latency_ms:.2f}ms", f"{found.jitter_ms:.2f}ms"
    print(
        f"median {found.p50_ms:.2f} ms for {SCRIPTED_MS:g} ms of scripted sleeps over {HOPS} "
        f"hops between pods: {latency} per hop, varying by {jitter} either way\n"
        f"simulate with it: meshchaos run FILE --mode simulate --network-latency {latency} "
        f"--network-jitter {jitter}\n"
        f"report: {found.run_dir}"
    )
    return EXIT_PASS


if __name__ == "__main__":
    main()
