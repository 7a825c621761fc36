"""Does simulate mode tell what real mode tells? Each experiment run in both, side by side.

For every experiment in ``experiments/`` (or the files given), the script runs
``meshchaos run --mode real`` and ``--mode simulate`` one after the other, then prints, per
scope of the summary, p50 and p99 in both modes and whether they agree within the target of
issue 9: 10 % + 2 ms of the real value. Then each SLO's verdict in both modes. Real mode
measures real CPU and loopback costs that simulate mode leaves out (docs/simulate.md), which
is what the 2 ms allow for; latencies that come from scripts and faults should agree.

    python bench/faithfulness.py [experiments/quickstart.yaml ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path, mode: str, out: Path) -> dict[str, Any]:
    """Run one experiment in ``mode`` and return its summary."""
    command = [sys.executable, "-m", "harness.cli", "run", str(path), "--mode", mode,
               "--out", str(out), "--quiet"]  # fmt: skip
    subprocess.run(command, cwd=ROOT, check=False, capture_output=True)
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


def agrees(real_ms: float, simulated_ms: float) -> bool:
    """Tell whether the simulated value is within 10 % + 2 ms of the real one."""
    return abs(simulated_ms - real_ms) <= 0.10 * real_ms + 2.0


def compare(real: dict[str, Any], simulated: dict[str, Any]) -> bool:
    """Print the comparison of one experiment; return whether everything agrees."""
    ok = True
    print(f"{'scope':<28} {'p50 real':>9} {'p50 sim':>9} {'p99 real':>9} {'p99 sim':>9}  agree")
    for scope, stats in real["scopes"].items():
        other = simulated["scopes"].get(scope)
        if other is None or not stats["requests"]:
            continue
        r, s = stats["latency_ms"], other["latency_ms"]
        fine = agrees(r["p50"], s["p50"]) and agrees(r["p99"], s["p99"])
        ok &= fine
        print(
            f"{scope:<28} {r['p50']:9.2f} {s['p50']:9.2f} {r['p99']:9.2f} {s['p99']:9.2f}"
            f"  {'yes' if fine else 'NO'}"
        )
    print(f"{'SLO':<28} {'real':>9} {'simulate':>9}")
    for slo_real, slo_sim in zip(real["slos"], simulated["slos"], strict=True):
        same = slo_real["passed"] == slo_sim["passed"]
        ok &= same
        verdicts = ["pass" if slo["passed"] else "FAIL" for slo in (slo_real, slo_sim)]
        mark = "" if same else "DIFFER"
        print(f"{slo_real['name']:<28} {verdicts[0]:>9} {verdicts[1]:>9}  {mark}")
    print(f"verdict: real {real['verdict']}, simulate {simulated['verdict']}")
    return ok and real["verdict"] == simulated["verdict"]


def main() -> None:
    """Run every experiment in both modes and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--keep", type=Path, default=None, help="keep the report folders here")
    args = parser.parse_args()
    files = args.files or sorted((ROOT / "experiments").glob("*.yaml"))
    with tempfile.TemporaryDirectory(prefix="faithfulness-") as temporary:
        folder = args.keep or Path(temporary)
        agreed = []
        for path in files:
            print(f"== {path.name}")
            real = run(path, "real", folder / path.stem / "real")
            simulated = run(path, "simulate", folder / path.stem / "simulate")
            agreed.append(compare(real, simulated))
    print(f"{sum(agreed)} of {len(agreed)} experiments agree (target: all)")


if __name__ == "__main__":
    main()
