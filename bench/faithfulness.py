"""Does simulate mode tell what real mode tells? Each experiment run in both, side by side.

For every experiment in ``experiments/`` (or the files given), the script runs
``meshchaos run --mode real`` and ``--mode simulate`` one after the other, then prints, per
scope of the summary, p50 and p99 in both modes and whether they agree within the target of
issue 9: 10 % + 2 ms of the real value. Then each SLO's verdict in both modes. Real mode
measures real CPU and loopback costs that simulate mode leaves out (docs/simulate.md), which
is what the 2 ms allow for; latencies that come from scripts and faults should agree.

    python bench/faithfulness.py [experiments/quickstart.yaml ...] [--keep DIR] [--realtime]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


# SCHED_RR priority 1: above every ordinary process, below the kernel's own threads; the
# kernel still leaves ordinary processes 5 % of each CPU (sched_rt_runtime_us).
REALTIME = ["chrt", "--rr", "1"]


def run(path: Path, mode: str, out: Path, prefix: list[str]) -> dict[str, Any] | None:
    """Run one experiment in ``mode`` and return its summary (``None``: the run wrote none)."""
    command = [*prefix, sys.executable, "-m", "harness.cli", "run", str(path), "--mode", mode,
               "--out", str(out), "--quiet"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, check=False, capture_output=True, text=True)
    if not (out / "summary.json").exists():
        print(f"{mode} run exited {done.returncode} without a summary:\n{done.stderr[-2000:]}")
        return None
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


def agrees(real_ms: float, simulated_ms: float) -> bool:
    """Tell whether the simulated value is within 10 % + 2 ms of the real one."""
    return abs(simulated_ms - real_ms) <= 0.10 * real_ms + 2.0


def compare(real: dict[str, Any], simulated: dict[str, Any]) -> bool:
    """Print the comparison of one experiment; return whether everything agrees."""
    ok = True
    width = max(28, *(len(scope) for scope in real["scopes"]))
    print(
        f"{'scope':<{width}} {'p50 real':>9} {'p50 sim':>9} {'p99 real':>9} {'p99 sim':>9}  agree"
    )
    for scope, stats in real["scopes"].items():
        other = simulated["scopes"].get(scope)
        if other is None or not stats["requests"]:
            continue
        r, s = stats["latency_ms"], other["latency_ms"]
        fine = agrees(r["p50"], s["p50"]) and agrees(r["p99"], s["p99"])
        ok &= fine
        print(
            f"{scope:<{width}} {r['p50']:9.2f} {s['p50']:9.2f} {r['p99']:9.2f} {s['p99']:9.2f}"
            f"  {'yes' if fine else 'NO'}"
        )
    width = max(28, *(len(slo["name"]) for slo in real["slos"]))
    print(f"{'SLO':<{width}} {'real':>9} {'simulate':>9}")
    for slo_real, slo_sim in zip(real["slos"], simulated["slos"], strict=True):
        same = slo_real["passed"] == slo_sim["passed"]
        ok &= same
        verdicts = ["pass" if slo["passed"] else "FAIL" for slo in (slo_real, slo_sim)]
        mark = "" if same else "DIFFER"
        print(f"{slo_real['name']:<{width}} {verdicts[0]:>9} {verdicts[1]:>9}  {mark}")
    print(f"verdict: real {real['verdict']}, simulate {simulated['verdict']}")
    return ok and real["verdict"] == simulated["verdict"]


def main() -> None:
    """Run every experiment in both modes and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--keep", type=Path, default=None, help="keep the report folders here")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="run real mode at real-time priority (chrt --rr 1, needs root), so that a busy "
        "machine's other processes do not make it wait for a CPU",
    )
    args = parser.parse_args()
    files = args.files or sorted((ROOT / "experiments").glob("*.yaml"))
    with tempfile.TemporaryDirectory(prefix="faithfulness-") as temporary:
        folder = args.keep or Path(temporary)
        agreed = []
        for path in files:
            # Real-mode latencies include waits for a CPU: on a shared machine, say how busy.
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"== {path.name} (load average {load})")
            real = run(path, "real", folder / path.stem / "real", REALTIME if args.realtime else [])
            simulated = run(path, "simulate", folder / path.stem / "simulate", [])
            if real is None or simulated is None:
                agreed.append(False)
                continue
            lag = real["load"]["generator_lag_ms"]
            print(f"real mode's generator lag: p50 {lag['p50']:.2f} ms, p99 {lag['p99']:.2f} ms")
            agreed.append(compare(real, simulated))
    print(f"{sum(agreed)} of {len(agreed)} experiments agree (target: all)")
    sys.exit(0 if all(agreed) else 1)


if __name__ == "__main__":
    main()
