"""The ``meshchaos`` command line: what building its parser costs every command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Runs each command in turn in one fresh interpreter and prints, after each, which of the
# heavy modules it imported (matplotlib alone costs about 1.5 s of imports).
_PROBE = """
import sys
from harness.cli import main

for argv in sys.argv[1:]:
    try:
        main(argv.split())
    except SystemExit:
        pass
    heavy = sorted(m for m in ("matplotlib", "numpy", "harness.plots") if m in sys.modules)
    print("probe:", argv.split()[0], heavy, flush=True)
"""


def test_validate_and_help_import_no_plotting_or_numpy() -> None:
    commands = [
        f"validate {ROOT / 'experiments' / 'quickstart.yaml'}",
        "run --help",
        "load --help",
        "compare --help",
        "proxy --help",
        "ca --help",
        "calibrate --help",
    ]
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *commands],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    probes = [line for line in result.stdout.splitlines() if line.startswith("probe:")]
    assert probes == [
        f"probe: {command} []"
        for command in ("validate", "run", "load", "compare", "proxy", "ca", "calibrate")
    ], result.stdout
    assert "quickstart.yaml: valid" in result.stdout
