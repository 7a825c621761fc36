"""``meshchaos load URL``: a standalone open-loop load generator, like wrk2.

It drives the same generator experiments use (harness/load.py) at one URL on 127.0.0.1, and
prints a latency table (or, with ``--json``, the object of DESIGN.md 4.1). Latency counts from
each request's intended start (coordinated omission corrected); the uncorrected latency and
the generator's lag are reported beside it.

``--workers N`` runs N processes, each at rate / N with its own seed. Each worker returns its
histograms HDR-encoded per one-second interval, and they are decoded and added up here, so
the merged percentiles are exact, not averages of percentiles.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import sys
from array import array
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import trio

from harness.cliargs import add_load_arguments
from harness.experiment import LoadSpec, RequestSpec, Stage
from harness.hdrlog import write_hlog
from harness.load import LoadClient, OpenLoopGenerator, Sample
from harness.pacing import precise_clock, precise_sleepers
from harness.recorder import Recorder
from meshcore.model import Endpoint
from meshcore.transport.network import TcpNetwork

__all__ = ["LoadRun", "LoadTarget", "main", "parse_target"]

_LOOPBACK = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1"}
# The scopes of one load run's recorder (and the tags of its .hlog).
LATENCY, UNCORRECTED, LAG = "all", "uncorrected", "generator-lag"
_TABLE_PERCENTILES = (50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 99.999)
_JSON_PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))
_BATCH = 1024  # samples buffered before they are recorded


@dataclass(frozen=True, slots=True)
class LoadTarget:
    """Where the load goes: an endpoint on 127.0.0.1, the Host header and the path."""

    endpoint: Endpoint
    host: str
    path: str


def parse_target(url: str) -> LoadTarget:
    """Parse ``http://127.0.0.1:8080/path``; raise ValueError for anything off the loopback."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"only http:// URLs are supported, got {url!r}")
    host = parts.hostname or ""
    if host not in _LOOPBACK:
        raise ValueError(f"meshchaos load only targets 127.0.0.1 (or localhost), got {host!r}")
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return LoadTarget(Endpoint(_LOOPBACK[host], port), parts.netloc, path)


class LoadRun:
    """The measurements of one load run (one worker or several merged).

    :meth:`on_sample` is on the generator's hot path: it appends the sample's figures to flat
    arrays, and every :data:`_BATCH` samples they go into the three scopes with
    :meth:`Recorder.record_many` (a few numpy calls), which gives exactly what recording each
    sample would. ``recorder`` flushes what is buffered before it is read.
    """

    def __init__(self) -> None:
        self._recorder = Recorder()
        self.outcomes: Counter[str] = Counter()
        self.dropped = 0
        self._intended = array("d")
        self._latency = array("d")
        self._uncorrected = array("d")
        self._lag = array("d")
        self._failed = array("b")

    @property
    def recorder(self) -> Recorder:
        """The histograms, with every sample recorded so far."""
        self._flush()
        return self._recorder

    def on_sample(self, sample: Sample) -> None:
        """Record one request."""
        self.outcomes[sample.outcome] += 1
        self._intended.append(sample.intended_s)
        self._latency.append(sample.latency_s)
        self._uncorrected.append(sample.uncorrected_s)
        self._lag.append(sample.lag_s)
        self._failed.append(sample.error)
        if len(self._intended) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self._intended:
            return
        intended = np.frombuffer(self._intended, dtype=np.float64)
        record = self._recorder.record_many
        record(LATENCY, intended, self._latency, np.frombuffer(self._failed, dtype=np.int8))
        record(UNCORRECTED, intended, self._uncorrected)
        record(LAG, intended, np.maximum(np.frombuffer(self._lag, dtype=np.float64), 0.0))
        self._intended, self._latency, self._uncorrected = array("d"), array("d"), array("d")
        self._lag, self._failed = array("d"), array("b")

    def on_dropped(self, intended_s: float) -> None:
        """Count one request that was never sent."""
        self.dropped += 1

    def encode(self) -> dict[str, Any]:
        """Return this run as JSON: every interval histogram HDR-encoded."""
        scopes = {name: self.recorder.encode_scope(name) for name in self.recorder.scope_names()}
        return {"scopes": scopes, "outcomes": dict(self.outcomes), "dropped": self.dropped}

    def add_encoded(self, document: dict[str, Any]) -> None:
        """Add a worker's :meth:`encode` output to this run."""
        for name, intervals in document["scopes"].items():
            self._recorder.add_encoded(name, intervals)
        self.outcomes.update(document["outcomes"])
        self.dropped += document["dropped"]

    def summary(self, rate: float, duration_s: float) -> dict[str, Any]:
        """Return the ``--json`` object of DESIGN.md 4.1."""
        names = self.recorder.scope_names()
        requests = self.recorder.scope(LATENCY, duration_s).requests if LATENCY in names else 0
        errors = self.recorder.scope(LATENCY, duration_s).errors if LATENCY in names else 0
        return {
            "target_rps": rate,
            "achieved_rps": round(requests / duration_s, 3),
            "requests": requests,
            "errors": errors,
            "dropped": self.dropped,
            "outcomes": dict(sorted(self.outcomes.items())),
            "latency_ms": self._percentiles(LATENCY),
            "uncorrected_latency_ms": self._percentiles(UNCORRECTED),
            "generator_lag_ms": self._percentiles(LAG),
        }

    def _percentiles(self, scope: str) -> dict[str, float]:
        if scope not in self.recorder.scope_names():
            return {}
        stats = self.recorder.scope(scope, 0.0)
        values = {label: round(stats.percentile_ms(p), 3) for label, p in _JSON_PERCENTILES}
        values["max"] = round(stats.max_ms, 3)
        values["mean"] = round(stats.mean_ms, 3)
        return values


async def drive(
    target: LoadTarget, *, rate: float, duration_s: float, connections: int, seed: int
) -> LoadRun:
    """Run the open-loop load in this process and return what it measured."""
    load = LoadSpec(
        target=target.host,
        requests=(RequestSpec(path=target.path),),
        stages=(Stage(duration_s, rate),),
        start_rate_per_s=rate,
        connections=connections,
    )
    run = LoadRun()
    client = LoadClient(load, [target.endpoint], TcpNetwork())
    generator = OpenLoopGenerator(
        load,
        client,
        random.Random(seed),
        run.on_sample,
        run.on_dropped,
        sleepers=precise_sleepers(),
    )
    await generator.run(duration_s)
    return run


async def _run_workers(args: argparse.Namespace, target: LoadTarget) -> LoadRun:
    """Start ``args.workers`` worker processes sharing the rate; merge what they measured."""
    merged = LoadRun()
    per_worker = args.rate / args.workers
    connections = max(1, math.ceil(args.connections / args.workers))

    async def one(index: int) -> None:
        argv = [
            sys.executable, "-m", "harness.loadcmd", args.url, "--worker",
            "--rate", str(per_worker), "--duration", f"{args.duration}s",
            "--connections", str(connections), "--seed", str(args.seed + index),
        ]  # fmt: skip
        result = await trio.run_process(argv, capture_stdout=True, check=True)
        merged.add_encoded(json.loads(result.stdout))

    async with trio.open_nursery() as nursery:
        for index in range(args.workers):
            nursery.start_soon(one, index)
    return merged


def _table(summary: dict[str, Any], run: LoadRun) -> str:
    stats = run.recorder.scope(LATENCY, 0.0)
    uncorrected = run.recorder.scope(UNCORRECTED, 0.0)
    lines = ["  percentile   latency (ms)   uncorrected (ms)"]
    for percentile in _TABLE_PERCENTILES:
        lines.append(
            f"  {percentile:>9g}%  {stats.percentile_ms(percentile):>13.3f}"
            f"  {uncorrected.percentile_ms(percentile):>17.3f}"
        )
    lines.append(f"  {'max':>10}  {stats.max_ms:>13.3f}  {uncorrected.max_ms:>17.3f}")
    lag = summary["generator_lag_ms"]
    outcomes = ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items())
    lines += [
        "",
        f"  requests {summary['requests']}  ({outcomes})",
        f"  rate     {summary['achieved_rps']:.1f}/s achieved of {summary['target_rps']:g}/s",
        f"  errors   {summary['errors']}   dropped {summary['dropped']}",
        f"  generator lag  p99 {lag.get('p99', 0):.3f} ms   max {lag.get('max', 0):.3f} ms",
    ]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshchaos load", description=__doc__.split("\n")[0])
    add_load_arguments(parser)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help="seed of the arrival draws")
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Run ``meshchaos load`` with parsed ``args``; return the exit code."""
    try:
        target = parse_target(args.url)
    except ValueError as error:
        print(f"meshchaos load: {error}", file=sys.stderr)
        return 2
    seed = getattr(args, "seed", 1)
    # The objects of start-up (imports: trio, numpy, ...) out of the collector's way: a full
    # collection through them took 20-35 ms in the middle of a run, all of it generator lag.
    gc.collect()
    gc.freeze()
    started = datetime.now(UTC)
    if args.workers == 1 or getattr(args, "worker", False):
        run = trio.run(
            lambda: drive(
                target,
                rate=args.rate,
                duration_s=args.duration,
                connections=args.connections,
                seed=seed,
            ),
            clock=precise_clock(),  # trio's timers to the microsecond (harness/pacing.py)
        )
    else:
        args.seed = seed
        run = trio.run(_run_workers, args, target)
    if getattr(args, "worker", False):
        json.dump(run.encode(), sys.stdout)
        return 0
    summary = run.summary(args.rate, args.duration)
    if args.hlog:
        write_hlog(args.hlog, run.recorder, start_epoch_s=started.timestamp())
    if args.json:
        print(json.dumps(summary))
    elif summary["requests"]:
        print(_table(summary, run))
    else:
        print("no request completed", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> None:
    """Run the standalone load generator (also ``python -m harness.loadcmd``)."""
    raise SystemExit(run_command(_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
