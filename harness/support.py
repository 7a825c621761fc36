"""What the current build can run: features a valid experiment may use but this build does not.

An experiment file may be valid (the full model of DESIGN.md 4.2 loads) and still use a part
that is not built yet. Running it anyway would silently measure something else, so
``meshchaos run`` and ``validate`` refuse it with exit 2 and a ``FILE:LINE:COL`` per use.
"""

from __future__ import annotations

from harness.chaos import FAULT_KINDS
from harness.experiment import Diagnostic, Experiment
from meshcore.fields import Problem

__all__ = ["unsupported"]


def unsupported(experiment: Experiment, *, mode: str) -> list[Diagnostic]:
    """Return one diagnostic for each use of a feature this build cannot run in ``mode``."""
    problems: list[Problem] = []
    if mode == "simulate":
        for index, service in enumerate(experiment.services):
            # A program is a process with its own sockets and clock: it cannot join a Trio run
            # on the in-memory network. An ASGI app could (harness.asgi), once the simulated
            # topology serves one.
            for key, given in (("command", service.command), ("app", service.app)):
                if given is not None:
                    problems.append(
                        Problem(
                            ("spec", "services", index, key),
                            f"{key}: a service given by {key} cannot run in simulate mode"
                            " (only scripted services can); run it with --mode real",
                        )
                    )
    for index, fault in enumerate(experiment.faults):
        if fault.kind not in FAULT_KINDS:
            available = ", ".join(sorted(FAULT_KINDS))
            problems.append(
                Problem(
                    ("spec", "faults", index),
                    f"fault kind {fault.kind!r} is not available yet (available: {available})",
                )
            )
    return [experiment.source_map.diagnostic(experiment.source, p) for p in problems]
