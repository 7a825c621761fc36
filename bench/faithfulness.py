"""Does simulate mode tell what real mode tells? Each experiment run in both, side by side.

First ``meshchaos calibrate`` measures, in real mode, what one hop between pods costs on this
machine (CPU and wake-ups, which simulate mode leaves out by design: docs/simulate.md), once
per mTLS mode the experiments use (TLS costs CPU per hop); that figure, the same for every
experiment of the mode, becomes simulate mode's ``--network-latency``.
Then, for every experiment in ``experiments/`` (or the files given), the script runs
``meshchaos run --mode real``, ``--mode simulate --network-latency CALIBRATED`` and plain
``--mode simulate``, and prints, per scope of the summary, p50 and p99 of real and calibrated
simulate mode and whether they agree within the target of issue 9: 10 % + 2 ms of the real
value; then each SLO's verdict in every mode, and how many experiments agree without the
calibration as well.

    python bench/faithfulness.py [experiments/quickstart.yaml ...] [--keep DIR] [--realtime]
        [--network-latency 1.5ms]   # skip the calibration and use this
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

from harness.calibrate import hop_latency
from harness.experiment import load_experiment

ROOT = Path(__file__).resolve().parents[1]


# SCHED_RR priority 1: above every ordinary process, below the kernel's own threads; the
# kernel still leaves ordinary processes 5 % of each CPU (sched_rt_runtime_us).
REALTIME = ["chrt", "--rr", "1"]


def meshchaos(arguments: list[str], out: Path, prefix: list[str]) -> dict[str, Any] | None:
    """Run a meshchaos command writing a report to ``out``; return its summary (or ``None``)."""
    command = [*prefix, sys.executable, "-m", "harness.cli", *arguments, "--out", str(out),
               "--quiet"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, check=False, capture_output=True, text=True)
    if not (out / "summary.json").exists():
        print(f"{' '.join(arguments)} exited {done.returncode} without a summary:\n"
              f"{done.stderr[-2000:]}")  # fmt: skip
        return None
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


def calibrated_latency(out: Path, prefix: list[str], mtls: str) -> str:
    """Run ``meshchaos calibrate --mtls`` and return the latency per hop (``"1.52ms"``)."""
    summary = meshchaos(["calibrate", "--mtls", mtls], out, prefix)
    if summary is None:
        sys.exit(1)
    return f"{hop_latency(summary):.2f}ms"


def agrees(real_ms: float, simulated_ms: float) -> bool:
    """Tell whether the simulated value is within 10 % + 2 ms of the real one."""
    return abs(simulated_ms - real_ms) <= 0.10 * real_ms + 2.0


def compare(real: dict[str, Any], simulated: dict[str, Any]) -> tuple[bool, list[str]]:
    """Compare one experiment's two runs: whether they agree, and the table that shows it."""
    ok = True
    width = max(28, *(len(scope) for scope in real["scopes"]))
    columns = " ".join(f"{name:>9}" for name in ("p50 real", "p50 sim", "p99 real", "p99 sim"))
    lines = [f"{'scope':<{width}} {columns}  agree"]
    for scope, stats in real["scopes"].items():
        other = simulated["scopes"].get(scope)
        if other is None or not stats["requests"]:
            continue
        r, s = stats["latency_ms"], other["latency_ms"]
        fine = agrees(r["p50"], s["p50"]) and agrees(r["p99"], s["p99"])
        ok &= fine
        lines.append(
            f"{scope:<{width}} {r['p50']:9.2f} {s['p50']:9.2f} {r['p99']:9.2f} {s['p99']:9.2f}"
            f"  {'yes' if fine else 'NO'}"
        )
    width = max(28, *(len(slo["name"]) for slo in real["slos"]))
    lines.append(f"{'SLO':<{width}} {'real':>9} {'simulate':>9}")
    for slo_real, slo_sim in zip(real["slos"], simulated["slos"], strict=True):
        same = slo_real["passed"] == slo_sim["passed"]
        ok &= same
        verdicts = ["pass" if slo["passed"] else "FAIL" for slo in (slo_real, slo_sim)]
        mark = "" if same else "DIFFER"
        lines.append(f"{slo_real['name']:<{width}} {verdicts[0]:>9} {verdicts[1]:>9}  {mark}")
    lines.append(f"verdict: real {real['verdict']}, simulate {simulated['verdict']}")
    return ok and real["verdict"] == simulated["verdict"], lines


def main() -> None:
    """Calibrate, run every experiment in both modes and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--keep", type=Path, default=None, help="keep the report folders here")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="run real mode at real-time priority (chrt --rr 1, needs root), so that a busy "
        "machine's other processes do not make it wait for a CPU",
    )
    parser.add_argument("--network-latency", help="use this instead of calibrating")
    args = parser.parse_args()
    files = args.files or sorted((ROOT / "experiments").glob("*.yaml"))
    prefix = REALTIME if args.realtime else []
    with tempfile.TemporaryDirectory(prefix="faithfulness-") as temporary:
        folder = args.keep or Path(temporary)
        # Mutual TLS costs CPU per hop: one calibration per mode the experiments use.
        modes = {path: load_experiment(path).mesh.mtls for path in files}
        latencies: dict[str, str] = {}
        for mtls in sorted(set(modes.values())):
            out = folder / f"calibrate-{mtls.lower()}"
            latencies[mtls] = args.network_latency or calibrated_latency(out, prefix, mtls)
            print(f"simulate mode's network latency per hop with mtls {mtls}: {latencies[mtls]}")
        agreed, agreed_uncalibrated = [], []
        for path in files:
            latency = latencies[modes[path]]
            # Real-mode latencies include waits for a CPU: on a shared machine, say how busy.
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"== {path.name} (load average {load})")
            out = folder / path.stem
            real = meshchaos(["run", str(path), "--mode", "real"], out / "real", prefix)
            simulate = ["run", str(path), "--mode", "simulate"]
            calibrated = meshchaos([*simulate, "--network-latency", latency], out / "sim", [])
            uncalibrated = meshchaos(simulate, out / "sim-0", [])
            if real is None or calibrated is None or uncalibrated is None:
                agreed.append(False)
                agreed_uncalibrated.append(False)
                continue
            lag = real["load"]["generator_lag_ms"]
            print(f"real mode's generator lag: p50 {lag['p50']:.2f} ms, p99 {lag['p99']:.2f} ms")
            ok, table = compare(real, calibrated)
            print("\n".join(table))
            agreed.append(ok)
            agreed_uncalibrated.append(compare(real, uncalibrated)[0])
    print(f"{sum(agreed)} of {len(agreed)} experiments agree (target: all) with the calibrated "
          f"latencies; {sum(agreed_uncalibrated)} with none")  # fmt: skip
    sys.exit(0 if all(agreed) else 1)


if __name__ == "__main__":
    main()
