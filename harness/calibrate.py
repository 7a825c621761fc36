"""``meshchaos calibrate``: what one hop between pods costs on this machine, in real mode.

Simulate mode leaves CPU out by design: a request there takes exactly what its scripts and
faults say. Real mode adds, at every hop between pods, the Python work and the wake-ups of the
processes it passes (load generator, sidecars, hypercorn, the app), which on a shared VM is
more than a millisecond per hop and nearly the same at every hop (docs/simulate.md). That
constant is what ``spec.network.latency`` models: a one-way latency per hop between pods.

Calibration runs a small experiment in real mode, load generator -> frontend (sleeps 2 ms,
calls the backend) -> backend (sleeps 5 ms), at 50 requests/s, with the mTLS mode asked for
(each mode costs its own CPU per hop), and reads the median latency.
The request crosses four one-way hops between pods (there and back, twice), so::

    latency per hop = (p50 - 7 ms of scripted sleeps) / 4

The cost also varies from request to request (a wake-up is sometimes slower, a cache colder),
which is what puts real mode's p99 a few milliseconds above its median where simulate mode's
would equal it. ``spec.network.jitter`` models that: each hop's latency varies by a uniform draw
of up to the jitter either way (Toxiproxy's latency toxic). The spread of a sum of four such
draws is known (Irwin-Hall), so the jitter is the least-squares fit of the run's spread above
its median at p90 and p99::

    jitter = sum_q (p_q - p50) * s_q / sum_q s_q^2,  q in (p90, p99)

where ``s_q`` is the spread at quantile q of a sum of four uniform draws from [-1, 1].

Run an experiment in simulate mode with that latency and jitter (``--network-latency``,
``--network-jitter``) and its median and tail come out near real mode's on this machine, for a
topology of any depth, because the cost is per hop. It is a model of this machine at this
load, not a measurement of the experiment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, partial
from math import comb, factorial, floor
from pathlib import Path

import trio

from harness.experiment import Experiment, parse_experiment

__all__ = [
    "HOPS",
    "SCRIPTED_MS",
    "Calibration",
    "calibrate",
    "calibration_experiment",
    "hop_jitter",
    "hop_latency",
    "uniform_sum_spread",
]

SCRIPTED_MS = 7.0  # the frontend's 2 ms sleep and the backend's 5 ms, exact in simulate mode
HOPS = 4  # one-way hops between pods per request: generator -> frontend -> backend and back

_EXPERIMENT = """\
apiVersion: meshchaos/v1
kind: Experiment
metadata:
  name: calibrate
  description: >-
    meshchaos calibrate: the cost of one hop between pods in real mode on this machine.
spec:
  seed: 1
  warmup: 2s
  duration: {duration_s}s
  services:
    - {{name: frontend, script: [{{sleep: 2ms}}, {{call: backend}}]}}
    - {{name: backend, script: [{{sleep: 5ms}}]}}
  mesh: {{mtls: {mtls}}}
  load: {{target: frontend, rate: 50/s, connections: 32}}
  slos:
    - {{name: nothing fails, objective: "error_rate == 0"}}
"""


@dataclass(frozen=True, slots=True)
class Calibration:
    """The outcome of a calibration run."""

    latency_ms: float  # one-way latency per hop between pods that stands in for real mode's CPU
    jitter_ms: float  # how far that latency varies either way, uniformly, from hop to hop
    p50_ms: float  # the calibration request's median in real mode
    run_dir: Path  # the calibration run's report folder


def calibration_experiment(duration_s: float, mtls: str = "PERMISSIVE") -> Experiment:
    """Return the calibration experiment, measuring for ``duration_s`` after a 2 s warm-up.

    ``mtls`` is its ``spec.mesh.mtls``: mutual TLS between the sidecars costs CPU at every
    hop, so calibrate with the mode of the experiments the figure is for.
    """
    text = _EXPERIMENT.format(duration_s=duration_s, mtls=mtls)
    return parse_experiment(text, "<meshchaos calibrate>")


def hop_latency(latency_ms: Mapping[str, float]) -> float:
    """Return the latency per hop, in ms, that a calibration's latency percentiles imply.

    ``latency_ms`` maps ``p50`` (and ``p90``, ``p99`` for :func:`hop_jitter`) to milliseconds,
    as a scope of ``summary.json`` does: ``summary["scopes"]["all"]["latency_ms"]``.
    """
    return max(0.0, (latency_ms["p50"] - SCRIPTED_MS) / HOPS)


def hop_jitter(latency_ms: Mapping[str, float]) -> float:
    """Return the jitter per hop, in ms, that a calibration's latency percentiles imply."""
    seen = [latency_ms[name] - latency_ms["p50"] for name in ("p90", "p99")]
    unit = [uniform_sum_spread(q, HOPS) for q in (0.90, 0.99)]
    fit = sum(s * u for s, u in zip(seen, unit, strict=True)) / sum(u * u for u in unit)
    return max(0.0, fit)


@cache
def uniform_sum_spread(q: float, n: int) -> float:
    """Return how far the ``q`` quantile of a sum of ``n`` uniform draws from [-1, 1] lies above 0.

    For ``q`` of 0.5 or more (the sum is symmetric about 0). The sum is 2 x Irwin-Hall(n) - n;
    the quantile is found by bisecting Irwin-Hall's CDF over its upper half.
    """

    def cdf(x: float) -> float:  # Irwin-Hall(n), for 0 <= x <= n
        terms = (comb(n, k) * (x - k) ** n for k in range(floor(x) + 1))
        return sum(term if k % 2 == 0 else -term for k, term in enumerate(terms)) / factorial(n)

    low, high = n / 2, float(n)
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < q else (low, middle)
    return 2 * low - n


def calibrate(
    duration_s: float, run_dir: Path | None = None, *, mtls: str = "PERMISSIVE"
) -> Calibration:
    """Run the calibration experiment in real mode and return what one hop costs.

    Raises RuntimeError when a request of the run failed: the figure would be meaningless.
    """
    from harness.session import run_experiment

    result = trio.run(partial(run_experiment, calibration_experiment(duration_s, mtls), run_dir))
    if not result.passed:
        raise RuntimeError(f"the calibration run failed; see {result.run_dir}")
    latency_ms: Mapping[str, float] = result.summary["scopes"]["all"]["latency_ms"]
    return Calibration(
        hop_latency(latency_ms), hop_jitter(latency_ms), latency_ms["p50"], result.run_dir
    )
