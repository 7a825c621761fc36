"""What the current build can run: features a valid experiment may use but this build does not.

An experiment file may be valid (the full model of DESIGN.md 4.2 loads) and still use a part
that is not built yet. Running it anyway would silently measure something else, so
``meshchaos run`` and ``validate`` refuse it with exit 2 and a ``FILE:LINE:COL`` per use.
"""

from __future__ import annotations

from harness.experiment import Diagnostic, Experiment
from meshcore.fields import Problem

__all__ = ["unsupported"]

_MESH_FAULT_KINDS = ("delay", "abort", "delay+abort")


def unsupported(experiment: Experiment, *, mode: str) -> list[Diagnostic]:
    """Return one diagnostic for each use of a feature this build cannot run in ``mode``."""
    problems: list[Problem] = []
    if mode != "real":
        problems.append(Problem(("spec", "mode"), f"mode {mode!r} is not available yet"))
    if experiment.mesh.mtls == "STRICT":
        problems.append(
            Problem(("spec", "mesh", "mtls"), "mtls STRICT is not available yet: use DISABLE")
        )
    if experiment.mesh.authorization:
        problems.append(
            Problem(("spec", "mesh", "authorization"), "authorization is not available yet")
        )
    for index, fault in enumerate(experiment.faults):
        if fault.kind not in _MESH_FAULT_KINDS:
            problems.append(
                Problem(
                    ("spec", "faults", index),
                    f"fault kind {fault.kind!r} is not available yet (delay and abort are)",
                )
            )
    return [experiment.source_map.diagnostic(experiment.source, p) for p in problems]
