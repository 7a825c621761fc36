"""How much faster than real time simulate mode runs, and its simulated requests per CPU second.

The workload of issue 9: a frontend calling a three-replica backend through sidecars, with
mTLS STRICT (``--mtls DISABLE`` to compare), at 100 requests/s for five virtual minutes
(``--minutes``), with simulate mode's default ``spec.network.tls: handshake`` (``--tls full``
encrypts every byte, as real mode does). The run is the experiment runner itself under
simulate mode's clock, without writing a report (plots are not simulation). It prints the
virtual time, the wall and CPU time, the speed-up (virtual over wall seconds) and the
requests simulated per CPU second, then the latency the load generator saw as a sanity
check. ``--profile FILE`` writes a cProfile of the run.

    python bench/simulate.py [--minutes 5] [--rate 100] [--mtls STRICT] [--tls handshake]
                             [--profile out.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import tempfile
import time
from functools import partial
from pathlib import Path

from harness.runner import ExperimentRun
from harness.session import prepare
from harness.simulate import run_simulated


def experiment_document(
    minutes: float, rate: float, mtls: str, tls: str = "handshake"
) -> dict[str, object]:
    """Return the benchmark's experiment: frontend -> backend x3, sleeps only."""
    return {
        "apiVersion": "meshchaos/v1",
        "kind": "Experiment",
        "metadata": {"name": "bench-simulate"},
        "spec": {
            "seed": 7,
            "mode": "simulate",
            "warmup": "1s",
            "duration": f"{minutes * 60:g}s",
            "services": [
                {"name": "frontend", "script": [{"sleep": "2ms"}, {"call": "backend"}]},
                {
                    "name": "backend",
                    "replicas": 3,
                    "script": [
                        {"sleep": {"distribution": "lognormal", "median": "5ms", "p99": "20ms"}}
                    ],
                    "responseSize": "512B",
                },
            ],
            "mesh": {"mtls": mtls},
            "network": {"tls": tls},
            "load": {"target": "frontend", "rate": f"{rate:g}/s", "connections": 32},
        },
    }


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--mtls", choices=("STRICT", "PERMISSIVE", "DISABLE"), default="STRICT")
    parser.add_argument("--tls", choices=("handshake", "full"), default="handshake")
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    experiment = prepare(experiment_document(args.minutes, args.rate, args.mtls, args.tls))
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as folder:
        run = ExperimentRun(experiment, Path(folder) / "experiment.yaml", Path(folder))
        profile = cProfile.Profile() if args.profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        run_simulated(partial(run.execute), seed=experiment.seed)
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    virtual = experiment.warmup_s + experiment.duration_s
    stats = run.state.latency.scope("all", experiment.duration_s)
    requests = stats.requests
    print(f"workload   frontend -> backend x3, {args.rate:g}/s, mtls {args.mtls} (tls: {args.tls})")
    print(f"virtual    {virtual:.0f} s (+ drain), {requests} requests measured")
    print(f"wall       {wall:.2f} s    cpu {cpu:.2f} s")
    print(f"speed-up   {virtual / wall:.1f}x real time (target: 10x)")
    print(f"simulated  {requests / cpu:.0f} requests per CPU second")
    print(
        f"latency    p50 {stats.percentile_ms(50):.2f} ms  p99 {stats.percentile_ms(99):.2f} ms"
        f"  errors {stats.error_rate:.2%}"
    )


if __name__ == "__main__":
    main()
