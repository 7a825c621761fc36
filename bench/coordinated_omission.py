"""Coordinated omission, measured: a server that freezes for 0.5 s every 2 s, at 200/s.

A quarter of the time the server is frozen; a request arriving then waits for the rest of the
freeze, uniformly 0 to 0.5 s. So the true latency distribution has p75 at the service time,
p90 at 0.3 s and p99 at 0.48 s. Prints that expectation beside:

- meshchaos load with 200 connections: nothing waits in the generator (a freeze holds 100
  requests), so corrected and uncorrected latency agree, and both see the freeze;
- meshchaos load with 1 connection, wrk2's demonstration: the requests due during a freeze
  wait for the one connection, which the corrected latency counts (from each request's
  intended time) and the uncorrected latency hides;
- wrk with 1 connection (closed loop), which sends nothing while it waits, so it hides the
  freeze as the uncorrected figure does.

    nice -n -10 python bench/coordinated_omission.py [--duration 20s]
"""

from __future__ import annotations

import argparse

from _servers import meshchaos_load, scripted_server, wrk

EXPECTED_MS = {"p50": 0.0, "p90": 300.0, "p99": 480.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", default="20s")
    args = parser.parse_args()
    rows: list[tuple[str, dict[str, float]]] = []
    for connections in (200, 1):
        with scripted_server("freeze", "2", "0.5") as port:
            url = f"http://127.0.0.1:{port}/"
            ours = meshchaos_load(url, 200, args.duration, "--connections", str(connections))
        rows.append((f"meshchaos -c{connections} corrected", ours["latency_ms"]))  # type: ignore[arg-type]
        rows.append((f"meshchaos -c{connections} uncorrected", ours["uncorrected_latency_ms"]))  # type: ignore[arg-type]
    with scripted_server("freeze", "2", "0.5") as port:
        rows.append(("wrk -c1", wrk(f"http://127.0.0.1:{port}/", args.duration, connections=1)))
    print(f"{'':>28} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
    print(f"{'expected':>28} {'~0':>8} {EXPECTED_MS['p90']:>8.0f} {EXPECTED_MS['p99']:>8.0f}")
    for name, figures in rows:
        print(
            f"{name:>28} "
            + " ".join(f"{figures.get(k, float('nan')):>8.1f}" for k in ("p50", "p90", "p99"))
        )


if __name__ == "__main__":
    main()
