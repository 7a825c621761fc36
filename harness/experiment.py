"""The experiment model and its loader: YAML in, frozen dataclasses or ``FILE:LINE:COL`` out.

An experiment file (DESIGN.md 4.2, docs/experiments.md) describes a synthetic topology, the
mesh policy between its services, the load driven at it, the faults injected on a schedule and
the SLOs it must keep. Loading happens in three steps:

1. PyYAML composes the text into nodes; :class:`_PlainConverter` turns them into plain values
   while a :class:`SourceMap` remembers where every key and value sits.
2. :class:`_ExperimentReader` reads the model with :class:`~meshcore.fields.FieldReader`, which
   records every problem with its path instead of stopping at the first one, and cross-checks
   names (calls, targets, faults, SLOs) once every service is known.
3. Each problem's path is mapped to a line and column; errors raise :class:`ExperimentError`,
   warnings stay on :attr:`Experiment.warnings`.

The plain document is kept, with the seed and defaults resolved, as :attr:`Experiment.document`:
it is the ``experiment.yaml`` of a report, and :func:`with_overrides` re-reads an edited copy of
it, so an override is checked exactly like the file was.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import math
import os
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any, TypeAlias

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harness.distributions import Distribution, read_distribution
from harness.slo import STATUS_CLASSES, Objective, parse_objective, scope_name
from meshcore.config import (
    MTLS_MODES,
    DestinationPolicy,
    read_authorization_rule,
    read_destination_policy,
    read_fault_rule,
)
from meshcore.fields import FieldReader, Path, Problem, boolean, int_at_least, one_of, string
from meshcore.policy import authz
from meshcore.policy.faults import FaultRule
from meshcore.toxic_config import CERTIFICATE_FAULTS, read_toxic
from meshcore.units import (
    format_duration,
    parse_duration,
    parse_percent,
    parse_rate,
    parse_size,
)

__all__ = [
    "API_VERSION",
    "FAULT_KINDS",
    "HTTP_METHODS",
    "LOADGEN",
    "PHASES",
    "AuthorizationRule",
    "CallStep",
    "Diagnostic",
    "Experiment",
    "ExperimentError",
    "FaultSpec",
    "FaultTarget",
    "LoadSpec",
    "MeshSpec",
    "ParallelStep",
    "Position",
    "RequestSpec",
    "ServiceSpec",
    "SleepStep",
    "SloSpec",
    "SourceMap",
    "Stage",
    "Step",
    "iter_calls",
    "load_experiment",
    "parse_experiment",
    "with_overrides",
]

API_VERSION = "meshchaos/v1"
LOADGEN = "loadgen"  # the workload name of the load generator; no service may take it
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PHASES = ("baseline", "fault", "recovery", "all")
_NAME = re.compile(r"[a-z0-9-]+")
_APP_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SleepStep:
    """Wait for a duration drawn from ``distribution`` (``sleep: 2ms``)."""

    distribution: Distribution


@dataclass(frozen=True, slots=True)
class CallStep:
    """Call another service through the mesh (``call: checkout`` or ``call: {service: ...}``).

    ``on_error`` says what a failed call does to the request being served: ``fail`` answers it
    with the failure (the caller sees a 5xx), ``ignore`` goes on with the script.
    """

    service: str
    path: str = "/"
    method: str = "GET"
    size_bytes: int = 0
    on_error: str = "fail"


@dataclass(frozen=True, slots=True)
class ParallelStep:
    """Run ``steps`` concurrently and go on when all are done (a nested list in a script)."""

    steps: tuple[Step, ...]


Step: TypeAlias = SleepStep | CallStep | ParallelStep


def iter_calls(steps: Sequence[Step]) -> Iterator[CallStep]:
    """Yield every call of a script, concurrent ones included, in the order written."""
    for step in steps:
        if isinstance(step, CallStep):
            yield step
        elif isinstance(step, ParallelStep):
            yield from iter_calls(step.steps)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One service: how many replicas, and what each does per request.

    A synthetic service runs ``script``; a service brought by the user is an ASGI ``app``
    (``module:attribute``, served by hypercorn) or a ``command`` listening on ``port`` (``None``:
    the port the topology gives it in ``MESHCHAOS_PORT``). At most one of the three is set.
    """

    name: str
    replicas: int = 1
    script: tuple[Step, ...] = ()
    error_rate: float = 0.0  # fraction of requests the service itself answers with 500
    response_size_bytes: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    app: str | None = None
    command: tuple[str, ...] | None = None
    port: int | None = None

    def calls(self) -> tuple[CallStep, ...]:
        """Return every call this service makes, concurrent ones included."""
        return tuple(iter_calls(self.script))


@dataclass(frozen=True, slots=True)
class AuthorizationRule:
    """One AuthorizationPolicy rule, applied by the sidecars of ``destination``.

    ``rule`` is what a standalone sidecar's ``authorization:`` entry reads into, read by the
    same reader (:func:`meshcore.config.read_authorization_rule`): action, principals (Istio's
    ``cluster.local/ns/default/sa/NAME``), methods, paths and ``when`` header conditions. Its
    name is the rule's own ``name``, else ``spec.mesh.authorization[N]``.
    """

    destination: str
    rule: authz.AuthorizationRule


@dataclass(frozen=True, slots=True)
class MeshSpec:
    """The mesh between the services: mTLS mode, per-destination policy, authorization."""

    mtls: str = "PERMISSIVE"
    destinations: Mapping[str, DestinationPolicy] = field(default_factory=dict)
    authorization: tuple[AuthorizationRule, ...] = ()

    def destination(self, service: str) -> DestinationPolicy:
        """Return the policy for calls to ``service`` (Istio's defaults when it has none)."""
        return self.destinations.get(service) or DestinationPolicy()


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One kind of request the load generator sends; kinds are drawn in proportion to weight."""

    path: str = "/"
    method: str = "GET"
    weight: float = 1.0
    headers: Mapping[str, str] = field(default_factory=dict)
    size_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage of the load: ramp linearly to ``rate_per_s`` over ``duration_s``."""

    duration_s: float
    rate_per_s: float


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """The load driven at ``target``: open loop, with a rate that follows ``stages``.

    Time counts from the start of the load, warmup included. Each stage ramps linearly from the
    rate at its start (``start_rate_per_s`` for the first one) to its own ``rate_per_s`` at its
    end, like k6's ramping-arrival-rate; a stage of 0s jumps. After the last stage the rate is 0.
    """

    target: str
    requests: tuple[RequestSpec, ...] = (RequestSpec(),)
    stages: tuple[Stage, ...] = ()
    arrival: str = "constant"  # constant | poisson
    connections: int = 64
    start_rate_per_s: float = 0.0
    mode: str = "open"  # open | closed (closed: `connections` users, no rate)
    think_time_s: float = 0.0  # closed loop only: the pause between a user's requests

    @property
    def duration_s(self) -> float:
        """Return how long the load lasts (every stage)."""
        return sum(stage.duration_s for stage in self.stages)

    def rate_at(self, t_s: float) -> float:
        """Return the intended request rate (per second) at ``t_s`` after the load starts."""
        if t_s < 0:
            return 0.0
        start_s, previous = 0.0, self.start_rate_per_s
        for stage in self.stages:
            end_s = start_s + stage.duration_s
            if t_s < end_s:
                progress = (t_s - start_s) / stage.duration_s
                return previous + (stage.rate_per_s - previous) * progress
            start_s, previous = end_s, stage.rate_per_s
        return 0.0


@dataclass(frozen=True, slots=True)
class FaultTarget:
    """Where a fault acts: a service, one replica (``payments/1``) or an edge (``a->b``)."""

    service: str
    replica: int | None = None
    source: str | None = None
    # A share of a service's replicas (`replicas: 50%`): the indices the seed chose, in order.
    chosen: tuple[int, ...] | None = None

    @classmethod
    def parse(cls, text: object) -> FaultTarget:
        """Parse ``payments``, ``payments/1`` or ``checkout->payments``; raise ValueError."""
        expected = f"expected payments, payments/1 or checkout->payments, got {text!r}"
        if not isinstance(text, str):
            raise ValueError(expected)
        source: str | None = None
        rest = text.strip()
        if "->" in rest:
            source, _, rest = (part.strip() for part in rest.partition("->"))
        replica: int | None = None
        if "/" in rest:
            rest, _, index = rest.partition("/")
            if not index.isdigit():
                raise ValueError(expected)
            replica = int(index)
        if not _NAME.fullmatch(rest) or (source is not None and not _NAME.fullmatch(source)):
            raise ValueError(expected)
        if source is not None and replica is not None:
            raise ValueError(
                f"an edge fault acts on every replica of its destination: "
                f"write {source}->{rest}, without /{replica}"
            )
        return cls(rest, replica, source)

    @property
    def is_edge(self) -> bool:
        """Tell whether the fault acts on calls from ``source`` (in its outbound sidecar)."""
        return self.source is not None

    def __str__(self) -> str:
        text = self.service if self.source is None else f"{self.source}->{self.service}"
        return text if self.replica is None else f"{text}/{self.replica}"


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One scheduled fault.

    ``kind`` is ``delay``, ``abort``, ``delay+abort`` (mesh faults: ``rule`` holds them as the
    sidecars do), or ``kill``, ``pause``, ``partition``, ``toxic`` (``rule`` is ``None``).
    ``fields`` is the fault's mapping exactly as written in the file. ``start_s`` counts from the
    start of measurement; ``duration_s`` ``None`` means until the end.
    """

    name: str
    target: FaultTarget
    kind: str
    start_s: float
    duration_s: float | None
    fields: Mapping[str, object]
    rule: FaultRule | None = None
    ramp_s: float | None = None  # delay/abort percent rises from 0 over this, in each window
    every_s: float | None = None  # recurring: a window of `for_s` every `every_s` ...
    for_s: float | None = None  # ... from `start_s`, while within `duration_s`

    def windows(self, end_s: float) -> tuple[tuple[float, float], ...]:
        """Return the (start, stop) windows in which the fault acts, cut at ``end_s``.

        One window from ``start_s`` for ``duration_s`` (until ``end_s`` without one); for a
        recurring fault, a window of ``for_s`` every ``every_s`` within that span.
        """
        span_end = end_s if self.duration_s is None else min(end_s, self.start_s + self.duration_s)
        if self.every_s is None or self.for_s is None:
            return ((self.start_s, span_end),) if self.start_s < span_end else ()
        windows = []
        start = self.start_s
        while start < span_end - 1e-9:
            windows.append((start, min(start + self.for_s, span_end)))
            start = self.start_s + len(windows) * self.every_s  # no drift from repeated sums
        return tuple(windows)


@dataclass(frozen=True, slots=True)
class SloSpec:
    """One service-level objective, checked over the scope that ``where`` selects.

    ``where`` may hold ``phase`` (baseline | fault | recovery | all), ``service``, ``edge``
    (``a->b``), ``route`` (a path of the load) and ``status`` (``5xx``, ...); empty means the
    whole measured time at the load target. ``steady_state`` SLOs are checked at the end of the
    baseline (their ``where`` says ``phase: baseline``) and no fault is injected unless they
    hold; ``abort_on_fail`` SLOs are checked every second from ``abort_delay_s`` after the start
    of measurement and stop the run when they fail (docs/slo.md).
    """

    name: str
    objective: str
    where: Mapping[str, str] = field(default_factory=dict)
    severity: str = "error"  # error | warn
    steady_state: bool = False
    abort_on_fail: bool = False
    abort_delay_s: float = 0.0  # k6's delayAbortEval


@dataclass(frozen=True, slots=True)
class Position:
    """Where one field sits in the source file: its key and its value (1-based)."""

    key_line: int
    key_column: int
    value_line: int
    value_column: int
    container: bool  # the value is a mapping or a list


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem of an experiment file; ``str()`` renders ``FILE:LINE:COL: message``.

    Warnings render with ``warning: `` before the message.
    """

    source: str
    line: int
    column: int
    message: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.source}:{self.line}:{self.column}: {prefix}{self.message}"


@dataclass(frozen=True, slots=True)
class SourceMap:
    """The position of every path (keys and list indexes) of a parsed file."""

    positions: Mapping[Path, Position] = field(default_factory=dict)

    def locate(self, problem: Problem) -> tuple[int, int]:
        """Return the line and column that best show ``problem``.

        A scalar value is shown at the value; a mapping or list, or an unknown field, at its
        key; a missing field at the key of the closest enclosing field that exists.
        """
        position = self.positions.get(problem.path)
        if position is not None:
            # FieldReader.finish words every unknown-field problem this way.
            if position.container or problem.message.startswith("unknown field"):
                return position.key_line, position.key_column
            return position.value_line, position.value_column
        for end in range(len(problem.path) - 1, -1, -1):
            position = self.positions.get(problem.path[:end])
            if position is not None:
                return position.key_line, position.key_column
        return 1, 1

    def diagnostic(self, source: str, problem: Problem) -> Diagnostic:
        """Render ``problem`` for the file ``source``."""
        line, column = self.locate(problem)
        return Diagnostic(source, line, column, problem.message, problem.severity)


class ExperimentError(ValueError):
    """An experiment file is invalid; ``diagnostics`` holds every problem found (warnings too)."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


@dataclass(frozen=True, slots=True)
class Experiment:
    """A loaded, validated experiment (DESIGN.md 4.2). Durations are seconds from measurement."""

    name: str
    description: str
    seed: int
    mode: str | None  # real | simulate; None lets the command line choose
    warmup_s: float
    duration_s: float
    services: tuple[ServiceSpec, ...]
    mesh: MeshSpec
    load: LoadSpec
    faults: tuple[FaultSpec, ...]
    slos: tuple[SloSpec, ...]
    source: str  # the file name (or what the caller named the text)
    sha256: str  # of the source text
    document: Mapping[str, object]  # the experiment as run: seed and defaults resolved
    warnings: tuple[str, ...] = ()  # rendered FILE:LINE:COL: warning: message
    source_map: SourceMap = field(default_factory=SourceMap, repr=False, compare=False)
    network_latency_s: float = 0.0  # simulate mode: one-way latency between pods
    network_jitter_s: float = 0.0  # simulate mode: each trip varies uniformly by this either way
    # Simulate mode's mTLS: "handshake" (real handshakes, then data in the clear) or "full".
    network_tls: str = "handshake"

    def service(self, name: str) -> ServiceSpec:
        """Return the service called ``name``; raise KeyError when there is none."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no service {name!r} in experiment {self.name!r}")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_experiment(path: str | os.PathLike[str]) -> Experiment:
    """Load and check an experiment file; raise ExperimentError (OSError when unreadable)."""
    data = FilePath(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ExperimentError(
            [Diagnostic(os.fspath(path), 1, 1, f"the file is not UTF-8 text: {error}")]
        ) from None
    return parse_experiment(text, os.fspath(path))


def parse_experiment(text: str, source: str) -> Experiment:
    """Parse and check an experiment given as text; ``source`` names it in diagnostics."""
    sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    try:
        document, source_map, yaml_problems = _compose(text, source)
    except yaml.MarkedYAMLError as error:
        raise ExperimentError([_yaml_diagnostic(source, error)]) from None
    except yaml.YAMLError as error:
        raise ExperimentError([Diagnostic(source, 1, 1, f"invalid YAML: {error}")]) from None
    return _build(document, source, sha256, source_map, yaml_problems)


def with_overrides(
    experiment: Experiment,
    *,
    seed: int | None = None,
    mode: str | None = None,
    duration_s: float | None = None,
    warmup_s: float | None = None,
    network_latency_s: float | None = None,
    network_jitter_s: float | None = None,
) -> Experiment:
    """Return ``experiment`` with the given fields replaced, checked again as a whole.

    The overrides are written into a copy of :attr:`Experiment.document`, which is read again:
    a shorter duration that a fault no longer fits in raises ExperimentError, and a plain
    ``rate`` stretches to the new length.
    """
    document = copy.deepcopy(dict(experiment.document))
    spec = document["spec"]
    assert isinstance(spec, dict)  # a loaded experiment's document always has a spec mapping
    if seed is not None:
        spec["seed"] = seed
    if mode is not None:
        spec["mode"] = mode
    if duration_s is not None:
        spec["duration"] = format_duration(duration_s)
    if warmup_s is not None:
        spec["warmup"] = format_duration(warmup_s)
    for key, value in (("latency", network_latency_s), ("jitter", network_jitter_s)):
        if value is not None:
            network = spec.setdefault("network", {})
            assert isinstance(network, dict)  # a loaded experiment's network is a mapping
            network[key] = format_duration(value)
    return _build(document, experiment.source, experiment.sha256, experiment.source_map, [])


def _yaml_diagnostic(source: str, error: yaml.MarkedYAMLError) -> Diagnostic:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    message = f"invalid YAML: {error.problem or error.context}"
    if error.context and error.problem and error.context_mark is not None:
        where = f"{error.context_mark.line + 1}:{error.context_mark.column + 1}"
        message += f" ({error.context} started at {where})"
    return Diagnostic(source, line, column, message)


def _compose(text: str, source: str) -> tuple[object, SourceMap, list[Diagnostic]]:
    """Return the plain document, where each of its fields sits, and problems of the YAML itself."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        converter = _PlainConverter(loader, source)
        document = None if root is None else converter.convert(root, (), root)
        return document, SourceMap(converter.positions), converter.diagnostics
    finally:
        loader.dispose()


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _PlainConverter:
    """Turns YAML nodes into dicts, lists and scalars, recording the position of every path.

    Keys become strings, as FieldReader names them. Problems that have no path of their own
    (a duplicate key, a recursive alias) become diagnostics at once.
    """

    def __init__(self, loader: yaml.SafeLoader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.positions: dict[Path, Position] = {}
        self.diagnostics: list[Diagnostic] = []
        self.active: set[int] = set()  # nodes being converted, to stop recursive aliases

    def convert(self, node: Node, path: Path, key_node: Node) -> object:
        """Return the plain value of ``node``, found at ``path`` under ``key_node``."""
        container = isinstance(node, MappingNode | SequenceNode)
        self.positions[path] = Position(
            key_node.start_mark.line + 1,
            key_node.start_mark.column + 1,
            node.start_mark.line + 1,
            node.start_mark.column + 1,
            container,
        )
        if not container:
            return self.loader.construct_object(node)
        if id(node) in self.active:
            self._problem(node, "a recursive alias: a value cannot contain itself")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            return [
                self.convert(item, (*path, index), item) for index, item in enumerate(node.value)
            ]
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, object]:
        first_keys: dict[str, Node] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE_TAG:
                key = str(self.loader.construct_object(key_node))
                if key in first_keys:
                    line = first_keys[key].start_mark.line + 1
                    self._problem(key_node, f"duplicate key {key!r} (first at line {line})")
                first_keys.setdefault(key, key_node)
        # Merge keys (<<: *defaults) come first once flattened, so that the mapping's own keys,
        # converted last, win as YAML says they do.
        self.loader.flatten_mapping(node)
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, "a key must be a plain value, not a mapping or a list")
                continue
            key = str(self.loader.construct_object(key_node))
            result[key] = self.convert(value_node, (*path, key), key_node)
        return result

    def _problem(self, node: Node, message: str) -> None:
        mark = node.start_mark
        self.diagnostics.append(Diagnostic(self.source, mark.line + 1, mark.column + 1, message))


def _build(
    document: object,
    source: str,
    sha256: str,
    source_map: SourceMap,
    yaml_problems: list[Diagnostic],
) -> Experiment:
    problems: list[Problem] = []
    experiment = _ExperimentReader(problems).read(document)
    diagnostics = [*yaml_problems, *(source_map.diagnostic(source, p) for p in problems)]
    diagnostics.sort(key=lambda d: (d.line, d.column))
    if experiment is None or any(d.severity == "error" for d in diagnostics):
        raise ExperimentError(diagnostics)
    return dataclasses.replace(
        experiment,
        source=source,
        sha256=sha256,
        warnings=tuple(str(d) for d in diagnostics),
        source_map=source_map,
    )


# --------------------------------------------------------------------------------------------
# Reading the model out of the plain document
# --------------------------------------------------------------------------------------------

_MESH_KINDS = ("delay", "abort")
FAULT_KINDS = (*_MESH_KINDS, "kill", "pause", "partition", "toxic", *CERTIFICATE_FAULTS)


def _exactly(expected: str) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if value != expected:
            raise ValueError(f"expected {expected}, got {value!r}")
        return expected

    return convert


def _name(value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"expected lowercase letters, digits and '-' ([a-z0-9-]+), got {value!r}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration above 0s, got {value!r}")
    return seconds


def _positive_rate(value: object) -> float:
    rate = parse_rate(value)
    if rate <= 0:
        raise ValueError(f"expected a rate above 0, such as 200/s, got {value!r}")
    return rate


def _positive_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"expected a number above 0, got {value!r}")
    return float(value)


def _app_reference(value: object) -> str:
    text = string(value)
    if not _APP_REFERENCE.fullmatch(text):
        raise ValueError(f"expected module:attribute (an ASGI app, as hypercorn takes): {text!r}")
    return text


def _port(value: object) -> int:
    port = int_at_least(1)(value)
    if port > 65535:
        raise ValueError(f"expected a port between 1 and 65535, got {port}")
    return port


def _share(value: object) -> float:
    share = parse_percent(value)
    if share <= 0:
        raise ValueError("a share of replicas must be above 0%")
    return share


def _choose(service: ServiceSpec, share: float, seed: int, fault: FaultSpec) -> tuple[int, ...]:
    """Choose ``share`` of ``service``'s replicas for ``fault``, from the seed (at least one).

    Rounded down, as Chaos Mesh's ``fixed-percent`` mode does, but never none: 50% of 3 is 1.
    """
    count = max(1, math.floor(service.replicas * share + 1e-9))
    rng = random.Random(f"{seed}:fault:{fault.name}:replicas")
    return tuple(sorted(rng.sample(range(service.replicas), count)))


def _http_path(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"expected a path starting with '/', got {value!r}")
    return value


def _parse_edge(value: object) -> tuple[str, str]:
    parts = value.split("->") if isinstance(value, str) else []
    if len(parts) != 2 or not all(_NAME.fullmatch(part.strip()) for part in parts):
        raise ValueError(f"expected an edge such as checkout->payments, got {value!r}")
    return parts[0].strip(), parts[1].strip()


def _objective(value: object) -> str:
    text = string(value)
    parse_objective(text)
    return text


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", text.lower())


def _unique(base: str, taken: set[str], separator: str) -> str:
    name, number = base, 2
    while name in taken:
        name, number = f"{base}{separator}{number}", number + 1
    return name


def _find_cycles(graph: Mapping[str, Mapping[str, Path]]) -> list[tuple[list[str], Path]]:
    """Return each cycle of the call graph once, with the call that closes it.

    ``graph[caller][callee]`` is where the first such call is written. A depth-first search
    finds a cycle at every edge back to a service still on the stack.
    """
    on_stack: list[str] = []
    done: set[str] = set()
    cycles: list[tuple[list[str], Path]] = []

    def visit(service: str) -> None:
        on_stack.append(service)
        for callee, where in graph[service].items():
            if callee in on_stack:
                cycles.append(([*on_stack[on_stack.index(callee) :], callee], where))
            elif callee not in done:
                visit(callee)
        on_stack.pop()
        done.add(service)

    for service in graph:
        if service not in done:
            visit(service)
    return cycles


def _default(mapping: dict[str, Any], key: str, value: object) -> Any:
    """Set ``mapping[key]`` to ``value`` when it is absent or null, and return it."""
    if mapping.get(key) is None:
        mapping[key] = value
    return mapping[key]


class _ExperimentReader:
    """Reads an :class:`Experiment` out of a plain document, recording every problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.services: dict[str, ServiceSpec] = {}
        self.calls: list[tuple[str | None, str, Path]] = []  # caller, callee, where written
        self.edges: set[tuple[str, str]] = set()  # (caller, callee) pairs that carry traffic

    def problem(self, path: Path, message: str, severity: str = "error") -> None:
        """Record a problem at ``path``, its message led by the field's name."""
        if path and isinstance(path[-1], str):
            message = f"{path[-1]}: {message}"
        self.problems.append(Problem(path, message, severity))

    def unknown_service(self, name: str, *, also: Sequence[str] = ()) -> str:
        """Word an unknown service name, with the closest known one as a suggestion."""
        known = [*self.services, *also]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown service {name!r}{hint}; services: {', '.join(known)}"

    def read(self, document: object) -> Experiment | None:
        """Return the experiment, or ``None`` when a problem prevents building it."""
        if document is None:
            self.problems.append(
                Problem((), f"the file is empty; it starts with apiVersion: {API_VERSION}")
            )
            return None
        if not isinstance(document, dict):
            self.problems.append(
                Problem(
                    (),
                    f"expected a mapping (apiVersion: {API_VERSION}, ...), got a "
                    f"{type(document).__name__}",
                )
            )
            return None
        top = FieldReader(document, (), self.problems)
        top.take("apiVersion", _exactly(API_VERSION))
        top.take("kind", _exactly("Experiment"))
        metadata = top.child("metadata")
        name = metadata.take("name", _name)
        description = metadata.take("description", _text, default="")
        metadata.finish()
        if not top.has("spec"):
            top.problem(("spec",), "spec: required field is missing")
            top.finish()
            return None
        spec = top.child("spec")
        seed = spec.take("seed", int_at_least(0), default=1)
        mode = spec.take("mode", one_of("real", "simulate"), default=None)
        # Simulate mode's virtual network: the one-way latency between two pods (docs/simulate.md).
        network = spec.child("network")
        network_latency_s = network.take("latency", parse_duration, default=0.0)
        network_jitter_s = network.take("jitter", parse_duration, default=0.0)
        network_tls = network.take("tls", one_of("handshake", "full"), default="handshake")
        network.finish()
        warmup_s = spec.take("warmup", parse_duration, default=0.0)
        duration_s = spec.take("duration", _positive_duration)
        services = self.read_services(spec)
        mesh = self.read_mesh(spec.child("mesh"))
        load = self.read_load(spec, warmup_s, duration_s)
        faults = self.read_faults(spec, duration_s, seed)
        slos = self.read_slos(spec, load, faults, duration_s)
        spec.finish()
        top.finish()
        if load is None or any(p.severity == "error" for p in self.problems):
            return None
        experiment = Experiment(
            name=name,
            description=description,
            seed=seed,
            mode=mode,
            warmup_s=warmup_s,
            duration_s=duration_s,
            network_latency_s=network_latency_s,
            network_jitter_s=network_jitter_s,
            network_tls=network_tls,
            services=services,
            mesh=mesh,
            load=load,
            faults=faults,
            slos=slos,
            source="",
            sha256="",
            document={},
        )
        return dataclasses.replace(experiment, document=_resolve_document(document, experiment))

    # --- services -------------------------------------------------------------------------

    def read_services(self, spec: FieldReader) -> tuple[ServiceSpec, ...]:
        """Read ``spec.services`` and check the calls between them."""
        items = spec.items("services")
        if not items and not any(p.path == (*spec.path, "services") for p in self.problems):
            self.problem((*spec.path, "services"), "at least one service is required")
        for path, item in items:
            self.read_service(FieldReader(item, path, self.problems))
        self.check_calls()
        return tuple(self.services.values())

    def read_service(self, reader: FieldReader) -> None:
        """Read one service; register it when its name is valid and new."""
        name: str | None = reader.take("name", _name)
        if name in self.services:
            self.problem((*reader.path, "name"), f"a second service called {name!r}")
            name = None
        elif name == LOADGEN:
            self.problem(
                (*reader.path, "name"),
                f"{LOADGEN!r} is the load generator's workload name; choose another",
            )
            name = None
        replicas = reader.take("replicas", int_at_least(1), default=1)
        script = self.read_steps(reader.items("script"), name)
        error_rate = reader.take("errorRate", parse_percent, default=0.0)
        response_size = reader.take("responseSize", parse_size, default=0)
        labels = self.read_string_map(reader, "labels")
        app, command, port = self.read_own_service(reader, replicas)
        reader.finish()
        if name is not None:
            self.services[name] = ServiceSpec(
                name, replicas, script, error_rate, response_size, labels, app, command, port
            )

    def read_own_service(
        self, reader: FieldReader, replicas: int
    ) -> tuple[str | None, tuple[str, ...] | None, int | None]:
        """Read ``app`` or ``command`` (with ``port``): a service the user brings."""
        given = [key for key in ("script", "app", "command") if reader.has(key)]
        if len(given) > 1:
            self.problem(
                (*reader.path, given[1]),
                f"a service runs one of script, app or command, and this one has "
                f"{' and '.join(given)}",
            )
        app = reader.take("app", _app_reference, default=None)
        command = None
        if reader.has("command"):
            items = reader.items("command")
            command = tuple(str(v) for _, v in items if isinstance(v, str | int | float))
            if not items or len(command) != len(items):
                self.problem(
                    (*reader.path, "command"), "expected a non-empty list of strings (argv)"
                )
        port = reader.take("port", _port, default=None)
        if port is not None and command is None:
            self.problem((*reader.path, "port"), "port goes with command (the port it listens on)")
        elif port is not None and replicas > 1:
            self.problem(
                (*reader.path, "port"),
                f"{replicas} replicas cannot all listen on port {port}: leave port out and "
                "listen on $MESHCHAOS_PORT, which the topology sets for each replica",
            )
        if app is not None or command is not None:
            for key in ("errorRate", "responseSize"):
                if reader.has(key):
                    self.problem((*reader.path, key), f"{key} applies to a scripted service only")
        return app, command, port

    def read_steps(
        self, items: Sequence[tuple[Path, object]], caller: str | None, *, in_group: bool = False
    ) -> tuple[Step, ...]:
        """Read a list of steps (a script, or the branches of a concurrent group)."""
        steps = (self.read_step(path, item, caller, in_group=in_group) for path, item in items)
        return tuple(step for step in steps if step is not None)

    def read_step(
        self, path: Path, item: object, caller: str | None, *, in_group: bool
    ) -> Step | None:
        """Read one step: ``sleep``, ``call``, or a nested list run concurrently."""
        if isinstance(item, list):
            if in_group:
                self.problem(path, "a concurrent group cannot hold another list")
                return None
            if not item:
                self.problem(path, "an empty list: a concurrent group needs at least one step")
            branches = [((*path, index), branch) for index, branch in enumerate(item)]
            return ParallelStep(self.read_steps(branches, caller, in_group=True))
        if not isinstance(item, dict):
            self.problem(
                path, f"expected a step (sleep: or call:) or a list of steps, got {item!r}"
            )
            return None
        reader = FieldReader(item, path, self.problems)
        has_sleep, has_call = reader.has("sleep"), reader.has("call")
        step: Step | None = None
        if has_sleep and has_call:
            self.problem(path, "a step is either sleep or call; write them as two steps")
        elif has_sleep:
            distribution = read_distribution(reader, "sleep")
            step = None if distribution is None else SleepStep(distribution)
        elif has_call:
            step = self.read_call(reader, caller)
        else:
            self.problem(path, "a step needs sleep or call")
        reader.finish()
        return step

    def read_call(self, reader: FieldReader, caller: str | None) -> CallStep | None:
        """Read ``call: name`` or ``call: {service: ..., path: ..., ...}``."""
        if not isinstance(reader.raw("call"), dict):
            service = reader.take("call", _name)
            if service is None:
                return None
            self.calls.append((caller, service, (*reader.path, "call")))
            return CallStep(service)
        fields = reader.child("call")
        service = fields.take("service", _name)
        call = CallStep(
            service=service,
            path=fields.take("path", _http_path, default="/"),
            method=fields.take("method", one_of(*HTTP_METHODS), default="GET"),
            size_bytes=fields.take("size", parse_size, default=0),
            on_error=fields.take("onError", one_of("fail", "ignore"), default="fail"),
        )
        fields.finish()
        if service is None:
            return None
        self.calls.append((caller, service, (*fields.path, "service")))
        return call

    def check_calls(self) -> None:
        """Check that every call names a service, and that no request can call itself back."""
        graph: dict[str, dict[str, Path]] = {name: {} for name in self.services}
        for caller, callee, where in self.calls:
            if callee not in self.services:
                self.problem(where, self.unknown_service(callee))
            elif caller in graph:
                self.edges.add((caller, callee))
                graph[caller].setdefault(callee, where)
        for cycle, where in _find_cycles(graph):
            self.problem(
                where,
                f"the calls form a cycle, {' -> '.join(cycle)}: a request would never finish",
            )

    def read_string_map(self, reader: FieldReader, key: str) -> dict[str, str]:
        """Read a mapping of names to strings (labels, headers)."""
        fields = reader.child(key)
        return {name: fields.take(name, _text) for name in fields.names()}

    # --- mesh ------------------------------------------------------------------------------

    def read_mesh(self, mesh: FieldReader) -> MeshSpec:
        """Read ``spec.mesh``: mTLS mode, destinations and authorization rules."""
        mtls = mesh.take("mtls", one_of(*MTLS_MODES), default="PERMISSIVE")
        destinations: dict[str, DestinationPolicy] = {}
        table = mesh.child("destinations")
        for service in table.names():
            if service not in self.services:
                self.problem((*table.path, service), self.unknown_service(service))
            entry = table.child(service)
            destinations[service] = read_destination_policy(entry, name=service)
            entry.finish()
            for host in destinations[service].mirror_hosts():
                if host not in self.services:
                    self.problem((*entry.path, "http"), self.unknown_service(host))
        self.check_retried_methods(destinations, table.path)
        rules = tuple(
            self.read_authorization_rule(FieldReader(item, path, self.problems), index)
            for index, (path, item) in enumerate(mesh.items("authorization"))
        )
        if mtls == "DISABLE" and any(rule.rule.principals for rule in rules):
            self.problem(
                (*mesh.path, "authorization"),
                "rules with `from` match the caller's mTLS identity, "
                "and with mtls: DISABLE no caller has one",
                "warning",
            )
        mesh.finish()
        return MeshSpec(mtls, destinations, rules)

    def check_retried_methods(
        self, destinations: Mapping[str, DestinationPolicy], table: Path
    ) -> None:
        """Warn when a retry policy covers a POST or PATCH call (DESIGN.md 5, istio#13851)."""
        for caller_spec in self.services.values():
            for call in caller_spec.calls():
                policy = destinations.get(call.service) or DestinationPolicy()
                if call.method not in ("POST", "PATCH") or policy.retries.attempts == 0:
                    continue
                whose = "" if call.service in destinations else "Istio's default, "
                where: Path = (*table, call.service)
                for caller, callee, site in self.calls:
                    same = (caller, callee) == (caller_spec.name, call.service)
                    if same and site[-1] == "service":
                        where = (*site[:-1], "method")
                        break
                self.problem(
                    where,
                    f"{caller_spec.name} calls {call.service} with {call.method}, and the retry "
                    f"policy of {call.service} ({whose}{policy.retries.describe()}) may run it "
                    f"twice; if it is not idempotent, set retries: {{attempts: 0}} on "
                    f"{call.service} (istio#13851)",
                    "warning",
                )

    def read_authorization_rule(self, rule: FieldReader, index: int) -> AuthorizationRule:
        """Read one AuthorizationPolicy rule: ``destination``, then a sidecar's rule fields.

        On top of the sidecar's checks, a plain name in ``from`` must be a service (or
        ``loadgen``) and a method one of :data:`HTTP_METHODS`: in an experiment both are known.
        """
        destination = rule.take("destination", string)
        if destination is not None and destination not in self.services:
            self.problem((*rule.path, "destination"), self.unknown_service(destination))
        read = read_authorization_rule(rule, name=f"spec.mesh.authorization[{index}]")
        for path, item in rule.items("from"):
            plain = isinstance(item, str) and item and "/" not in item and "*" not in item
            if plain and item not in self.services and item != LOADGEN:
                message = self.unknown_service(item, also=[LOADGEN])
                self.problems.append(Problem(path, f"from: {message}"))
        method = one_of(*HTTP_METHODS)
        for path, item in rule.items("methods"):
            try:
                if isinstance(item, str) and item:  # the sidecar's reader reports the rest
                    method(item)
            except ValueError as error:
                self.problems.append(Problem(path, f"methods: {error}"))
        rule.finish()
        return AuthorizationRule(destination, read)

    # --- load ------------------------------------------------------------------------------

    def read_load(
        self, spec: FieldReader, warmup_s: float, duration_s: float | None
    ) -> LoadSpec | None:
        """Read ``spec.load``."""
        if not spec.has("load"):
            spec.problem(("load",), "load: required field is missing")
            return None
        load = spec.child("load")
        target = load.take("target", string)
        if target is not None and target not in self.services:
            self.problem((*load.path, "target"), self.unknown_service(target))
        elif target is not None:
            self.edges.add((LOADGEN, target))
        requests = self.read_requests(load)
        mode = load.take("mode", one_of("open", "closed"), default="open")
        think_time_s = 0.0
        stages: tuple[Stage, ...]
        if mode == "closed":
            for key in ("rate", "stages", "startRate", "arrival"):
                if load.has(key):
                    self.problem((*load.path, key), f"{key}: a closed-loop load has no rate")
            stages, start_rate = (), 0.0
            think_time_s = load.take("thinkTime", parse_duration, default=0.0)
        else:
            if load.has("thinkTime"):
                self.problem((*load.path, "thinkTime"), "thinkTime applies to mode: closed")
            stages, start_rate = self.read_stages(load, warmup_s, duration_s)
        result = LoadSpec(
            target=target,
            requests=requests,
            stages=stages,
            arrival=load.take("arrival", one_of("constant", "poisson"), default="constant"),
            connections=load.take("connections", int_at_least(1), default=64),
            start_rate_per_s=start_rate,
            mode=mode,
            think_time_s=think_time_s,
        )
        load.finish()
        return result

    def read_requests(self, load: FieldReader) -> tuple[RequestSpec, ...]:
        """Read ``load.requests`` (one GET / when absent)."""
        if not load.has("requests"):
            return (RequestSpec(),)
        requests = []
        for path, item in load.items("requests"):
            reader = FieldReader(item, path, self.problems)
            requests.append(
                RequestSpec(
                    path=reader.take("path", _http_path, default="/"),
                    method=reader.take("method", one_of(*HTTP_METHODS), default="GET"),
                    weight=reader.take("weight", _positive_number, default=1.0),
                    headers=self.read_string_map(reader, "headers"),
                    size_bytes=reader.take("size", parse_size, default=0),
                )
            )
            reader.finish()
        if not requests and load.raw("requests") == []:
            self.problem((*load.path, "requests"), "at least one request is required")
        return tuple(requests)

    def read_stages(
        self, load: FieldReader, warmup_s: float, duration_s: float | None
    ) -> tuple[tuple[Stage, ...], float]:
        """Read ``rate`` or ``stages``; return the stages and the rate they start from."""
        has_rate, has_stages = load.has("rate"), load.has("stages")
        if has_rate and has_stages:
            self.problem((*load.path, "stages"), "give either rate or stages, not both")
            load.has("startRate")
            return (), 0.0
        end_s = None if duration_s is None else warmup_s + duration_s
        if has_rate:
            rate = load.take("rate", _positive_rate)
            if load.has("startRate"):
                self.problem((*load.path, "startRate"), "applies only to stages")
            if rate is None or end_s is None:
                return (), 0.0
            return (Stage(end_s, rate),), rate
        if not has_stages:
            self.problem(load.path, "needs a rate (such as 200/s) or stages")
            return (), 0.0
        start_rate = load.take("startRate", parse_rate, default=0.0)
        stages = []
        for path, item in load.items("stages"):
            reader = FieldReader(item, path, self.problems)
            stages.append(
                Stage(reader.take("duration", parse_duration), reader.take("rate", parse_rate))
            )
            reader.finish()
        if not stages and load.raw("stages") == []:
            self.problem((*load.path, "stages"), "at least one stage is required")
        valid = all(s.duration_s is not None and s.rate_per_s is not None for s in stages)
        if valid and stages and end_s is not None:
            self.check_stages_length(load, sum(s.duration_s for s in stages), end_s)
        return tuple(stages), start_rate

    def check_stages_length(self, load: FieldReader, total_s: float, end_s: float) -> None:
        """Warn when the stages do not span the run (warmup + duration)."""
        total, end = format_duration(total_s), format_duration(end_s)
        if total_s < end_s - 1e-9:
            message = f"the stages end at {total}, before the run (warmup + duration) at {end}: "
            self.problem((*load.path, "stages"), message + f"no load after {total}", "warning")
        elif total_s > end_s + 1e-9:
            message = f"the stages last {total}, but the run (warmup + duration) ends at {end}"
            self.problem((*load.path, "stages"), message, "warning")

    # --- faults ----------------------------------------------------------------------------

    def read_faults(
        self, spec: FieldReader, duration_s: float | None, seed: int | None = None
    ) -> tuple[FaultSpec, ...]:
        """Read ``spec.faults``, naming the unnamed ones ``<kind>-<target>``."""
        items = spec.items("faults")
        taken = {item["name"] for _, item in items if isinstance(item, dict) and "name" in item}
        named: set[object] = set()
        faults = []
        for path, item in items:
            reader = FieldReader(item, path, self.problems)
            name = reader.take("name", _name, default=None)
            if name is not None and name in named:
                self.problem((*path, "name"), f"a second fault called {name!r}")
            named.add(name)
            fault = self.read_fault(reader, name, taken, duration_s)
            if fault is not None:
                fault = self.read_schedule(reader, fault, seed or 0)
            reader.finish()
            if fault is not None:
                faults.append(dataclasses.replace(fault, fields=copy.deepcopy(item)))
        return tuple(faults)

    def read_fault(
        self, reader: FieldReader, name: str | None, taken: set[str], duration_s: float | None
    ) -> FaultSpec | None:
        """Read one fault (every field but ``name``, which the caller read)."""
        target = reader.take("target", FaultTarget.parse)
        start_s = reader.take("start", parse_duration, default=0.0)
        fault_duration_s = reader.take("duration", _positive_duration, default=None)
        kind = self.fault_kind(reader)
        if name is None and kind is not None and target is not None:
            name = _unique(_slug(f"{kind}-{target}"), taken, "-")
            taken.add(name)
        rule = None
        if kind in ("delay", "abort", "delay+abort"):
            destination = target.service if target is not None and target.is_edge else None
            rule = read_fault_rule(reader, name=name or "", destination=destination)
        elif kind is not None:
            self.read_fault_body(reader, kind, target)
        if target is not None:
            self.check_fault_target(reader, target)
        if duration_s is not None:
            self.check_fault_window(reader, start_s, fault_duration_s, duration_s)
        if name is None or target is None or kind is None:
            return None
        return FaultSpec(name, target, kind, start_s, fault_duration_s, {}, rule)

    def read_schedule(self, reader: FieldReader, fault: FaultSpec, seed: int) -> FaultSpec | None:
        """Read a fault's share of replicas, ``ramp`` and recurring ``every``/``for``."""
        target = fault.target
        share = reader.take("replicas", _share, default=None)
        if share is not None:
            service = self.services.get(target.service)
            if target.replica is not None or target.is_edge:
                self.problem(
                    (*reader.path, "replicas"),
                    f"a share of replicas needs a service as target, not {target}",
                )
            elif service is not None:
                target = dataclasses.replace(target, chosen=_choose(service, share, seed, fault))
        ramp_s = reader.take("ramp", _positive_duration, default=None)
        if ramp_s is not None and fault.rule is None:
            self.problem((*reader.path, "ramp"), "ramp raises a delay's or an abort's percent only")
        every_s = reader.take("every", _positive_duration, default=None)
        for_s = reader.take("for", _positive_duration, default=None)
        if (every_s is None) != (for_s is None):
            missing = "for" if for_s is None else "every"
            self.problem(
                reader.path, f"a recurring fault needs every and for; {missing} is missing"
            )
        elif every_s is not None and for_s is not None and for_s >= every_s:
            self.problem(
                (*reader.path, "for"),
                f"for ({format_duration(for_s)}) must be shorter than every "
                f"({format_duration(every_s)}), or the fault never stops: drop every and for",
            )
        if ramp_s is not None:
            window_s = for_s if for_s is not None else fault.duration_s
            if window_s is not None and ramp_s > window_s + 1e-9:
                self.problem(
                    (*reader.path, "ramp"),
                    f"the ramp ({format_duration(ramp_s)}) outlasts the fault's window "
                    f"({format_duration(window_s)}): its percent is never reached",
                    "warning",
                )
        return dataclasses.replace(
            fault, target=target, ramp_s=ramp_s, every_s=every_s, for_s=for_s
        )

    def fault_kind(self, reader: FieldReader) -> str | None:
        """Return the fault's kind: delay and/or abort, or exactly one other kind."""
        present = [kind for kind in FAULT_KINDS if reader.has(kind)]
        mesh = [kind for kind in present if kind in _MESH_KINDS]
        groups = (["+".join(mesh)] if mesh else []) + [k for k in present if k not in mesh]
        if len(groups) == 1:
            return groups[0]
        reader.has("level")  # reported with the kind, not as an unknown field
        if not groups:
            self.problem(reader.path, f"a fault needs one of {', '.join(FAULT_KINDS)}")
        else:
            self.problem(
                (*reader.path, present[-1]),
                f"a fault has one kind, and this one has {' and '.join(groups)}: "
                "write one fault per kind",
            )
        return None

    def read_fault_body(self, reader: FieldReader, kind: str, target: FaultTarget | None) -> None:
        """Check the body of a kill, pause, partition or toxic fault."""
        if reader.has("level"):
            self.problem((*reader.path, "level"), "applies only to delay and abort faults")
        body = reader.child(kind)
        if kind == "toxic":
            self.read_toxic(body)
        elif kind == "wrongIdentity":
            presented = body.take("service", _name, default=None)  # whose identity it presents
            body.finish()
            if presented is not None and presented not in ("impostor", *self.services):
                # Any name is a valid identity (an outsider's), but a misspelt service is likelier.
                self.problem(
                    (*body.path, "service"),
                    f"{self.unknown_service(presented, also=['impostor'])}: the replica presents "
                    "an identity no service of this experiment has",
                    "warning",
                )
        else:
            for key in body.names():
                body.problem(
                    (key,), f"unknown field {key!r}: {kind} takes none; write {kind}: {{}}"
                )
        if kind in ("kill", "pause", *CERTIFICATE_FAULTS) and target is not None and target.is_edge:
            self.problem(
                (*reader.path, "target"),
                f"{kind} acts on a service or one replica, not on an edge; "
                f"use partition or toxic for {target}",
            )

    def read_toxic(self, body: FieldReader) -> None:
        """Check a Toxiproxy-style toxic with the sidecar's own reader (either spelling)."""
        read_toxic(body)
        body.finish()

    def check_fault_target(self, reader: FieldReader, target: FaultTarget) -> None:
        """Check that the target's service, replica and source exist."""
        where = (*reader.path, "target")
        service = self.services.get(target.service)
        if service is None:
            self.problem(where, self.unknown_service(target.service))
            return
        if target.replica is not None and target.replica >= service.replicas:
            self.problem(
                where,
                f"there is no replica {target}: {service.name} has {service.replicas} "
                f"replica{'s' if service.replicas > 1 else ''}, numbered from 0",
            )
        if target.source is None:
            return
        if target.source not in self.services:
            self.problem(where, self.unknown_service(target.source))
        elif (target.source, target.service) not in self.edges:
            self.problem(
                where,
                f"{target.source} never calls {target.service}: this fault will not act",
                "warning",
            )

    def check_fault_window(
        self,
        reader: FieldReader,
        start_s: float,
        fault_duration_s: float | None,
        duration_s: float,
    ) -> None:
        """Check that the fault starts during the measurement; warn when it outlasts it."""
        end = format_duration(duration_s)
        if start_s >= duration_s:
            self.problem(
                (*reader.path, "start"),
                f"the fault starts at {format_duration(start_s)}, at or after the end of "
                f"the measurement ({end}): it would never act",
            )
        elif fault_duration_s is not None and start_s + fault_duration_s > duration_s + 1e-9:
            self.problem(
                (*reader.path, "duration"),
                f"the fault would last until {format_duration(start_s + fault_duration_s)}, "
                f"past the end of the measurement ({end}); it ends there",
                "warning",
            )

    # --- SLOs ------------------------------------------------------------------------------

    def read_slos(
        self,
        spec: FieldReader,
        load: LoadSpec | None,
        faults: tuple[FaultSpec, ...],
        duration_s: float | None,
    ) -> tuple[SloSpec, ...]:
        """Read ``spec.slos``; an SLO without a name is named by its objective and its scope.

        ``p99 < 250ms (phase=fault)``, or the objective alone for the scope ``all`` (the rule of
        docs/slo.md); ``#2``, ``#3`` follow a name that is already taken.
        """
        items = spec.items("slos")
        taken = {item["name"] for _, item in items if isinstance(item, dict) and "name" in item}
        named: set[str] = set()
        slos = []
        for path, item in items:
            reader = FieldReader(item, path, self.problems)
            objective = reader.take("objective", _objective)
            name = reader.take("name", string, default=None)
            where = self.read_where(reader, load)
            severity = reader.take("severity", one_of("error", "warn"), default="error")
            steady_state = reader.take("steadyState", boolean, default=False)
            abort_on_fail = reader.take("abortOnFail", boolean, default=False)
            delay_s = reader.take("delay", parse_duration, default=0.0)
            reader.finish()
            if objective is not None:
                parsed = parse_objective(objective)
                self.check_slo_timing(reader, parsed, where, faults, duration_s)
                self.check_guards(reader, parsed, severity, duration_s)
            if steady_state and where.get("phase", "baseline") == "baseline":
                where = {"phase": "baseline", **where}
            if name is not None:
                if name in named:
                    self.problem((*path, "name"), f"a second SLO called {name!r}")
                named.add(name)
            elif objective is not None:
                scope = scope_name(where)
                base = objective if scope == "all" else f"{objective} ({scope})"
                name = _unique(base, taken, " #")
                taken.add(name)
            if name is not None and objective is not None:
                slos.append(
                    SloSpec(name, objective, where, severity, steady_state, abort_on_fail, delay_s)
                )
        return tuple(slos)

    def check_slo_timing(
        self,
        reader: FieldReader,
        objective: Objective,
        where: Mapping[str, str],
        faults: tuple[FaultSpec, ...],
        duration_s: float | None,
    ) -> None:
        """Check that the phases a relative or recovery_time objective needs will exist."""
        first_fault_s = min((fault.start_s for fault in faults), default=None)
        no_baseline = first_fault_s is not None and first_fault_s <= 0
        phase = where.get("phase")
        if objective.relative is not None:
            if phase == "baseline":
                self.problem(
                    (*reader.path, "objective"),
                    "compares the baseline with itself: a relative objective needs another phase",
                )
            elif no_baseline:
                self.problem(
                    (*reader.path, "objective"),
                    "has no baseline to compare with: the first fault starts at 0s",
                )
        if objective.metric == "recovery_time":
            if phase is not None:
                self.problem(
                    (*reader.path, "where", "phase"),
                    "recovery_time is measured from the end of the last fault: it takes no phase",
                )
            ends = [
                None if fault.duration_s is None else fault.start_s + fault.duration_s
                for fault in faults
            ]
            last_end = None if not ends or None in ends else max(e for e in ends if e is not None)
            if duration_s is not None and (last_end is None or last_end >= duration_s):
                self.problem(
                    (*reader.path, "objective"),
                    "recovery_time needs every fault to end before the measurement does"
                    + ("" if faults else ": there are no faults"),
                )
        if reader.raw("steadyState") is True:
            if phase not in (None, "baseline"):
                self.problem(
                    (*reader.path, "steadyState"),
                    f"a steady-state SLO is checked at the end of the baseline, not in phase "
                    f"{phase}: remove where.phase",
                )
            elif objective.relative is not None or objective.metric == "recovery_time":
                self.problem(
                    (*reader.path, "steadyState"),
                    f"{objective.label} {'relative to the baseline ' if objective.relative else ''}"
                    "cannot be checked at the end of the baseline",
                )
            elif no_baseline:
                self.problem(
                    (*reader.path, "steadyState"),
                    "there is no baseline to check it on: the first fault starts at 0s",
                )

    def check_guards(
        self,
        reader: FieldReader,
        objective: Objective,
        severity: str,
        duration_s: float | None,
    ) -> None:
        """Check ``abortOnFail`` and its ``delay`` (k6's delayAbortEval)."""
        if reader.raw("abortOnFail") is not True:
            if reader.raw("delay") is not None:
                self.problem((*reader.path, "delay"), "applies only with abortOnFail: true")
            return
        at = (*reader.path, "abortOnFail")
        if severity == "warn":
            self.problem(at, "a warn SLO only reports: it cannot stop the run (remove one)")
        if objective.metric == "recovery_time":
            self.problem(at, "recovery_time is known only at the end of the run")
        delay = reader.raw("delay")
        try:
            delay_s = 0.0 if delay is None else parse_duration(delay)
        except ValueError:
            return  # reported by the read of delay
        if duration_s is not None and delay_s >= duration_s:
            self.problem(
                (*reader.path, "delay"),
                f"the run measures {format_duration(duration_s)}: a guard rail that waits "
                f"{format_duration(delay_s)} is never checked",
                "warning",
            )

    def read_where(self, reader: FieldReader, load: LoadSpec | None) -> dict[str, str]:
        """Read an SLO's ``where``: phase, service, edge, route and status, each optional."""
        fields = reader.child("where")
        where: dict[str, str] = {}
        phase = fields.take("phase", one_of(*PHASES), default=None)
        if phase is not None:
            where["phase"] = phase
        service = fields.take("service", string, default=None)
        if service is not None:
            if service not in self.services:
                self.problem((*fields.path, "service"), self.unknown_service(service))
            where["service"] = service
        edge = fields.take("edge", _parse_edge, default=None)
        if edge is not None:
            self.check_edge((*fields.path, "edge"), *edge)
            where["edge"] = "->".join(edge)
        route = fields.take("route", _http_path, default=None)
        if route is not None:
            paths = [request.path for request in load.requests] if load is not None else []
            if load is not None and route not in paths:
                close = difflib.get_close_matches(route, paths, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.problem(
                    (*fields.path, "route"),
                    f"the load sends no request to {route!r}{hint}; its paths: {', '.join(paths)}",
                )
            where["route"] = route
        status = fields.take("status", one_of(*STATUS_CLASSES), default=None)
        if status is not None:
            where["status"] = status
        target = load.target if load is not None else None
        elsewhere = edge is not None or service not in (None, target)
        if route and elsewhere:
            self.problem(
                (*fields.path, "route"),
                f"route and status select the load generator's requests to {target}: "
                "they cannot be combined with another service or an edge",
            )
        elif status in ("connect", "reset", "timeout") and elsewhere:
            # The sidecars measure edges by HTTP status class (2xx..5xx) only.
            self.problem(
                (*fields.path, "status"),
                f"status {status} selects the load generator's requests to {target}: "
                "on another service or an edge use 2xx, 3xx, 4xx or 5xx",
            )
        fields.finish()
        return where

    def check_edge(self, where: Path, source: str, destination: str) -> None:
        """Check both ends of an SLO's edge (it may start at loadgen); warn when it is idle."""
        sources = [*self.services, LOADGEN]
        if source not in sources:
            self.problem(where, self.unknown_service(source, also=[LOADGEN]))
        if destination not in self.services:
            self.problem(where, self.unknown_service(destination))
        elif source in sources and (source, destination) not in self.edges:
            self.problem(
                where, f"{source} never calls {destination}: no traffic to measure", "warning"
            )


def _resolve_document(document: Mapping[str, Any], experiment: Experiment) -> dict[str, Any]:
    """Return the document with the seed, the fault and SLO names and the defaults written in."""
    resolved = copy.deepcopy(dict(document))
    spec = resolved["spec"]
    spec["seed"] = experiment.seed
    _default(spec, "warmup", format_duration(experiment.warmup_s))
    for raw_service, service in zip(spec["services"], experiment.services, strict=True):
        _default(raw_service, "replicas", service.replicas)
    _default(_default(spec, "mesh", {}), "mtls", experiment.mesh.mtls)
    load = spec["load"]
    _default(load, "requests", [{"path": "/"}])
    _default(load, "arrival", experiment.load.arrival)
    _default(load, "connections", experiment.load.connections)
    # Names go first, where a reader of experiment.yaml looks for them.
    if spec.get("faults"):
        faults = zip(spec["faults"], experiment.faults, strict=True)
        spec["faults"] = [{"name": f.name} | raw | {"name": f.name} for raw, f in faults]
    if spec.get("slos"):
        slos = zip(spec["slos"], experiment.slos, strict=True)
        spec["slos"] = [{"name": slo.name} | raw | {"name": slo.name} for raw, slo in slos]
    return resolved
