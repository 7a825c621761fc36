"""The arguments of ``meshchaos`` commands that have many, apart from the commands' code.

``meshchaos`` builds its whole parser on every command, so whatever the parser imports every
command pays for: compare's module draws with matplotlib (about 1.5 s of imports) and load's
records with numpy. Their arguments live here, on the standard library and
:mod:`meshcore.units` only, and :mod:`harness.cli` imports a command's module when that
command runs. ``tests/harness/test_cli.py`` checks that ``validate`` imports neither.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from meshcore.units import UnitError, parse_duration

__all__ = [
    "add_calibrate_arguments",
    "add_compare_arguments",
    "add_load_arguments",
    "network_duration",
]


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``meshchaos load`` (DESIGN.md 4.1) to ``parser``."""
    parser.add_argument("url", help="http://127.0.0.1:PORT/path")
    parser.add_argument("--rate", type=_positive(float), required=True, help="requests/s")
    parser.add_argument("--duration", type=_duration, required=True, help="e.g. 10s, 1m")
    parser.add_argument("--connections", type=_positive(int), default=64)
    parser.add_argument("--workers", type=_positive(int), default=1)
    parser.add_argument("--hlog", type=Path, help="write the HdrHistogram interval log here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``meshchaos compare`` to its subparser."""
    parser.add_argument("run_a", type=Path, metavar="RUN_A", help="the reference report folder")
    parser.add_argument("run_b", type=Path, metavar="RUN_B", help="the report folder to judge")
    parser.add_argument(
        "--out", type=Path, help="write compare.md and the plots here (default reports/compare/..)"
    )
    parser.add_argument(
        "--max-regression",
        type=_threshold,
        metavar="PCT",
        help="exit 1 when a significant regression exceeds PCT %% of A",
    )


def add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``meshchaos calibrate`` to its subparser."""
    parser.add_argument(
        "--duration", type=_duration, default=10.0, help="measured time (default 10s)"
    )
    parser.add_argument("--out", type=Path, help="write the calibration run's report here")
    parser.add_argument(
        "--mtls",
        choices=("STRICT", "PERMISSIVE", "DISABLE"),
        default="PERMISSIVE",
        help="spec.mesh.mtls of the calibration run: that of the experiments to simulate "
        "(default PERMISSIVE, the mesh's default)",
    )
    parser.add_argument("--quiet", action="store_true", help="only the result")


def network_duration(text: str) -> float:
    """Convert ``--network-latency`` and ``--network-jitter``: a duration from 0 to 1 s."""
    value = _parsed_duration(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0s and 1s")
    return value


def _positive(kind: type[float] | type[int]) -> Callable[[str], float]:
    def convert(text: str) -> float:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return convert


def _parsed_duration(text: str) -> float:
    try:
        return parse_duration(text)
    except UnitError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _duration(text: str) -> float:
    value = _parsed_duration(text)
    if value <= 0 or value > 3600:
        raise argparse.ArgumentTypeError("must be between 1ms and 1h")
    return value


def _threshold(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a percentage such as 10, got {text!r}"
        ) from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text!r}")
    return value
