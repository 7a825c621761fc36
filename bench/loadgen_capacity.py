"""How fast can one meshchaos load worker go? Against nginx, with wrk's maximum beside it.

Prints wrk's closed-loop maximum on the same nginx, then one meshchaos load worker at rising
open-loop rates: achieved rate, the ratio to wrk, the generator lag p50 and p99, and the
latency p99, and the worker's CPU time per request (user + system, from the kernel's
accounting of the finished worker process: robust to other load on the machine, unlike the
lag; the CPU time of a worker's start-up and exit, measured first with a handful of requests, is
taken off). The issue's target: 10,000/s from one worker, with lag p99 under 1 ms at 8,000/s.
The last line names the highest rate the worker sustained (achieved within 1 % of the target,
nothing dropped). ``--repeat N`` runs each rate N times (the machine is shared: report the
best and the spread).

    nice -n -10 python bench/loadgen_capacity.py [--duration 5s] [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource

from _servers import meshchaos_load, nginx, wrk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", default="5s")
    parser.add_argument("--rates", default="1000,2000,4000,6000,8000,10000,12000")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    sustained = 0.0
    with nginx() as port:
        url = f"http://127.0.0.1:{port}/"
        reference = wrk(url, args.duration)
        print(f"wrk -t1 -c64 (closed loop): {reference['rps']:.0f} req/s")
        header = (
            "target/s",
            "achieved/s",
            "vs wrk",
            "lag p50 ms",
            "lag p99 ms",
            "p99 ms",
            "dropped",
            "cpu us/req",
        )
        startup_s = min(_cpu_s_of(url, 10.0, "0.1s")[0] for _ in range(2))
        print("{:>9} {:>11} {:>7} {:>11} {:>11} {:>8} {:>8} {:>10}".format(*header))
        for rate in (float(r) for r in args.rates.split(",")):
            for _ in range(args.repeat):
                cpu_s, result = _cpu_s_of(url, rate, args.duration)
                cpu_s -= startup_s
                lag = result["generator_lag_ms"]
                p99 = result["latency_ms"]["p99"]  # type: ignore[index]
                achieved = float(result["achieved_rps"])  # type: ignore[arg-type]
                print(
                    f"{rate:>9.0f} {achieved:>11.0f} {achieved / reference['rps']:>7.2f} "
                    f"{lag['p50']:>11.3f} {lag['p99']:>11.3f} {p99:>8.3f} "  # type: ignore[index]
                    f"{result['dropped']:>8} "
                    f"{cpu_s / max(1, int(result['requests'])) * 1e6:>10.1f}"  # type: ignore[call-overload]
                )
                if achieved >= 0.99 * rate and not result["dropped"]:
                    sustained = max(sustained, rate)
    print(f"highest rate sustained by one worker: {sustained:.0f}/s")


def _cpu_s_of(url: str, rate: float, duration: str) -> tuple[float, dict[str, object]]:
    """Run one worker; return its CPU seconds (user + system) and its ``--json`` object."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = meshchaos_load(url, rate, duration, "--connections", "64")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, result


if __name__ == "__main__":
    main()
