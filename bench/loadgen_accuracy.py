"""Does meshchaos load measure what the server does? A server that answers in exactly 20 ms.

Prints the measured p50 and p99 (corrected and uncorrected) and their error against 20 ms,
beside wrk's figures for the same server.

    python bench/loadgen_accuracy.py [--rate 200] [--duration 10s]
"""

from __future__ import annotations

import argparse

from _servers import meshchaos_load, scripted_server, wrk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", default="10s")
    args = parser.parse_args()
    with scripted_server("fixed", "20") as port:
        url = f"http://127.0.0.1:{port}/"
        ours = meshchaos_load(url, args.rate, args.duration, "--connections", "16")
        reference = wrk(url, args.duration, connections=4)
    print(f"{'':>22} {'p50 ms':>8} {'p99 ms':>8} {'p50 err':>8} {'p99 err':>8}")
    for name, figures in (
        ("meshchaos corrected", ours["latency_ms"]),
        ("meshchaos uncorrected", ours["uncorrected_latency_ms"]),
        ("wrk", reference),
    ):
        p50, p99 = figures["p50"], figures["p99"]  # type: ignore[index]
        print(f"{name:>22} {p50:>8.3f} {p99:>8.3f} {(p50 - 20) / 20:>8.1%} {(p99 - 20) / 20:>8.1%}")


if __name__ == "__main__":
    main()
