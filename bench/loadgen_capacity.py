"""How fast can one meshchaos load worker go? Beside wrk, against nginx, in the same run.

Prints wrk's closed-loop maximum, then meshchaos load at rising open-loop rates: achieved
rate, the ratio to wrk, and the generator lag p99 (the issue's target: 10,000/s from one worker
with lag p99 under 1 ms at 80 % of that).

    python bench/loadgen_capacity.py [--duration 5s]
"""

from __future__ import annotations

import argparse

from _servers import meshchaos_load, nginx, wrk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", default="5s")
    parser.add_argument("--rates", default="1000,2000,4000,6000,8000,10000")
    args = parser.parse_args()
    with nginx() as port:
        url = f"http://127.0.0.1:{port}/"
        reference = wrk(url, args.duration)
        print(f"wrk -t1 -c64 (closed loop): {reference['rps']:.0f} req/s")
        header = ("target/s", "achieved/s", "vs wrk", "lag p99 ms", "p99 ms", "dropped")
        print("{:>9} {:>11} {:>7} {:>11} {:>8} {:>8}".format(*header))
        for rate in (float(r) for r in args.rates.split(",")):
            result = meshchaos_load(url, rate, args.duration, "--connections", "64")
            lag = result["generator_lag_ms"]["p99"]  # type: ignore[index]
            p99 = result["latency_ms"]["p99"]  # type: ignore[index]
            achieved = float(result["achieved_rps"])  # type: ignore[arg-type]
            print(
                f"{rate:>9.0f} {achieved:>11.0f} {achieved / reference['rps']:>7.2f} "
                f"{lag:>11.3f} {p99:>8.3f} {result['dropped']:>8}"
            )


if __name__ == "__main__":
    main()
