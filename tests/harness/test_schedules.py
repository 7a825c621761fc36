"""Fault targets and schedules: shares of replicas, ramps, recurring windows, composition.

The schedule runs against a fake topology (process faults recorded with their virtual time) and
a fake admin API on the in-memory network (mesh faults recorded as posted), under
``autojump_clock``, so every instant is exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from harness.chaos import FaultSchedule, ramp_scale
from harness.experiment import Experiment, ExperimentError, FaultTarget, parse_experiment
from harness.phases import Phase, phase_windows
from harness.runner import RunState
from harness.summary import build_summary
from harness.topology import Replica, Topology, expand_command, plan_replicas
from meshcore.model import Endpoint, Request, Response
from meshcore.transport.http1 import serve_http
from meshcore.transport.memory import MemoryNetwork

HEAD = """\
apiVersion: meshchaos/v1
kind: Experiment
metadata: {name: sched}
spec:
  seed: 7
  duration: 30s
  services:
    - {name: front, script: [{call: back}]}
    - {name: back, replicas: 4, script: [{sleep: 1ms}]}
  load: {target: front, rate: 10/s}
  faults:
"""


def _load(*faults: str) -> Experiment:
    return parse_experiment(HEAD + "".join(f"    - {fault}\n" for fault in faults), "exp.yaml")


def _errors(*faults: str) -> list[str]:
    with pytest.raises(ExperimentError) as caught:
        _load(*faults)
    return [str(d) for d in caught.value.diagnostics]


# --- the model ---------------------------------------------------------------------------------


def test_a_recurring_fault_has_a_window_every_period_cut_at_its_span() -> None:
    (fault,) = _load(
        "{target: back, start: 2s, duration: 15s, every: 5s, for: 2s, kill: {}}"
    ).faults
    assert fault.windows(30.0) == ((2.0, 4.0), (7.0, 9.0), (12.0, 14.0))
    (cut,) = _load("{target: back, start: 2s, duration: 11s, every: 5s, for: 2s, kill: {}}").faults
    assert cut.windows(30.0) == ((2.0, 4.0), (7.0, 9.0), (12.0, 13.0))
    (endless,) = _load("{target: back, start: 20s, every: 4s, for: 1s, kill: {}}").faults
    assert endless.windows(30.0) == ((20.0, 21.0), (24.0, 25.0), (28.0, 29.0))


def test_a_plain_fault_has_one_window() -> None:
    (fault,) = _load("{target: back, start: 3s, duration: 4s, kill: {}}").faults
    assert fault.windows(30.0) == ((3.0, 7.0),)
    assert fault.windows(5.0) == ((3.0, 5.0),)


def test_recurring_windows_are_fault_phases() -> None:
    experiment = _load("{target: back, start: 5s, duration: 12s, every: 5s, for: 2s, kill: {}}")
    assert phase_windows(experiment) == [
        Phase("baseline", 0.0, 5.0),
        Phase("fault", 5.0, 7.0),
        Phase("fault", 10.0, 12.0),
        Phase("fault", 15.0, 17.0),
        Phase("recovery", 17.0, 30.0),
    ]


def test_a_share_of_replicas_is_chosen_from_the_seed_rounded_down_never_none() -> None:
    (half,) = _load("{target: back, replicas: 50%, kill: {}}").faults
    assert half.target.chosen is not None
    assert len(half.target.chosen) == 2
    assert _load("{target: back, replicas: 50%, kill: {}}").faults[0].target == half.target
    (tenth,) = _load("{target: back, replicas: 10%, kill: {}}").faults
    assert tenth.target.chosen is not None
    assert len(tenth.target.chosen) == 1
    choices = {
        parse_experiment(
            (HEAD + "    - {target: back, replicas: 50%, kill: {}}\n").replace(
                "seed: 7", f"seed: {seed}"
            ),
            "exp.yaml",
        )
        .faults[0]
        .target.chosen
        for seed in range(20)
    }
    assert len(choices) > 1  # the seed decides


def test_schedule_fields_are_checked() -> None:
    assert _errors("{target: back/1, replicas: 50%, kill: {}}") == [
        "exp.yaml:12:34: replicas: a share of replicas needs a service as target, not back/1"
    ]
    assert _errors("{target: back, ramp: 5s, kill: {}}") == [
        "exp.yaml:12:28: ramp: ramp raises a delay's or an abort's percent only"
    ]
    assert _errors("{target: back, every: 5s, kill: {}}") == [
        "exp.yaml:12:7: a recurring fault needs every and for; for is missing"
    ]
    assert _errors("{target: back, every: 5s, for: 5s, kill: {}}") == [
        "exp.yaml:12:38: for: for (5s) must be shorter than every (5s), or the fault never "
        "stops: drop every and for"
    ]
    assert _errors("{target: back, replicas: 0%, kill: {}}") == [
        "exp.yaml:12:32: replicas: a share of replicas must be above 0%"
    ]


def test_a_ramp_longer_than_the_fault_is_a_warning() -> None:
    experiment = _load("{target: back, duration: 2s, ramp: 5s, abort: {httpStatus: 503}}")
    assert experiment.warnings == (
        "exp.yaml:12:42: warning: ramp: the ramp (5s) outlasts the fault's window (2s): its "
        "percent is never reached",
    )


def test_ramp_steps_hold_the_linear_ramps_mean() -> None:
    assert [ramp_scale(step, 4.0) for step in range(5)] == [0.125, 0.375, 0.625, 0.875, 1.0]


def test_command_arguments_expand_like_kubernetes() -> None:
    env = {"MESHCHAOS_PORT": "9000"}
    assert expand_command(["srv", "--port=$(MESHCHAOS_PORT)", "$(NOPE)"], env) == [
        "srv",
        "--port=9000",
        "$(NOPE)",
    ]


def test_a_service_runs_one_of_script_app_or_command() -> None:
    text = HEAD.replace(
        "    - {name: back, replicas: 4, script: [{sleep: 1ms}]}\n",
        "    - {name: back, replicas: 2, app: 'mod:app', command: [srv], port: 80,"
        " errorRate: 1%}\n",
    )
    with pytest.raises(ExperimentError) as caught:
        parse_experiment(text + "    - {target: back, kill: {}}\n", "exp.yaml")
    assert [str(d) for d in caught.value.diagnostics] == [
        "exp.yaml:9:49: command: a service runs one of script, app or command, and this one "
        "has app and command",
        "exp.yaml:9:71: port: 2 replicas cannot all listen on port 80: leave port out and "
        "listen on $MESHCHAOS_PORT, which the topology sets for each replica",
        "exp.yaml:9:86: errorRate: errorRate applies to a scripted service only",
    ]


def test_a_command_with_a_port_listens_there() -> None:
    text = HEAD.replace(
        "    - {name: back, replicas: 4, script: [{sleep: 1ms}]}\n",
        "    - {name: back, command: [srv, '$(MESHCHAOS_PORT)'], port: 18080}\n",
    )
    experiment = parse_experiment(text + "    - {target: back, kill: {}}\n", "exp.yaml")
    (back,) = plan_replicas(experiment, MemoryNetwork())["back"]
    assert back.app == Endpoint("127.0.0.1", 18080)


# --- the schedule ------------------------------------------------------------------------------


class FakeTopology(Topology):
    """Records process faults with their virtual time; mesh faults go to a fake admin API."""

    def __init__(self, experiment: Experiment, network: MemoryNetwork) -> None:
        super().__init__(experiment, Path("/nonexistent"), network)
        self.events: list[tuple[float, str, str]] = []
        self.admin_connections: list[float] = []  # when the fake admin APIs accepted each

    def _note(self, what: str, replica: Replica) -> None:
        self.events.append((trio.current_time(), what, replica.name))

    def kill(self, replica: Replica) -> None:
        self._note("kill", replica)

    def restart(self, replica: Replica) -> None:
        self._note("restart", replica)

    def pause(self, replica: Replica) -> None:
        self._note("pause", replica)

    def resume(self, replica: Replica) -> None:
        self._note("resume", replica)


async def _run_schedule(
    experiment: Experiment, *, latency_s: float = 0.0
) -> tuple[FakeTopology, FaultSchedule, list[tuple[float, str, Any]]]:
    """Run the schedule; ``posted``: each admin call, when the sidecar got it, and its body."""
    network = MemoryNetwork(latency_s=latency_s)
    topology = FakeTopology(experiment, network)
    posted: list[tuple[float, str, Any]] = []
    connections: list[float] = []  # when each admin connection was accepted

    async def admin(request: Request) -> Response:
        body = json.loads(request.body) if request.body else None
        posted.append((trio.current_time(), f"{request.method} {request.target}", body))
        return Response(201 if request.method == "POST" else 204)

    async def handler(stream: trio.abc.Stream) -> None:
        connections.append(trio.current_time())
        await serve_http(stream, admin)

    schedule = FaultSchedule(experiment.faults, topology)
    async with trio.open_nursery() as nursery:
        for replica in topology.all_replicas():
            await nursery.start(network.serve, replica.admin, handler)
        await schedule.run(trio.current_time(), experiment.duration_s)
        nursery.cancel_scope.cancel()
    topology.admin_connections = connections
    return topology, schedule, posted


async def test_recurring_kill_acts_in_each_window_and_each_window_is_recorded(
    autojump_clock: trio.abc.Clock,
) -> None:
    experiment = _load("{name: k, target: back/1, start: 2s, duration: 10s, every: 5s, for: 1s,"
                       " kill: {}}")  # fmt: skip
    topology, schedule, _ = await _run_schedule(experiment)
    assert topology.events == [
        (2.0, "kill", "back/1"),
        (3.0, "restart", "back/1"),
        (7.0, "kill", "back/1"),
        (8.0, "restart", "back/1"),
    ]
    assert [(f.window, f.applied_at_s, f.removed_at_s) for f in schedule.applied] == [
        (0, 2.0, 3.0),
        (1, 7.0, 8.0),
    ]


async def test_overlapping_kills_compose_the_replica_comes_back_when_the_last_ends(
    autojump_clock: trio.abc.Clock,
) -> None:
    experiment = _load(
        "{target: back/0, start: 1s, duration: 5s, kill: {}}",
        "{target: back, replicas: 100%, start: 3s, duration: 5s, kill: {}}",
    )
    topology, _, _ = await _run_schedule(experiment)
    assert topology.events == [
        (1.0, "kill", "back/0"),
        (3.0, "kill", "back/1"),
        (3.0, "kill", "back/2"),
        (3.0, "kill", "back/3"),
        (8.0, "restart", "back/0"),
        (8.0, "restart", "back/1"),
        (8.0, "restart", "back/2"),
        (8.0, "restart", "back/3"),
    ]


async def test_a_share_of_replicas_acts_only_on_the_chosen_ones(
    autojump_clock: trio.abc.Clock,
) -> None:
    experiment = _load("{target: back, replicas: 50%, start: 1s, duration: 1s, pause: {}}")
    chosen = experiment.faults[0].target.chosen
    assert chosen is not None
    topology, _, _ = await _run_schedule(experiment)
    names = [f"back/{index}" for index in chosen]
    assert topology.events == [
        *((1.0, "pause", name) for name in names),
        *((2.0, "resume", name) for name in names),
    ]


async def test_a_ramp_reposts_the_fault_each_second_then_removes_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    experiment = _load(
        "{name: r, target: back/0, start: 1s, duration: 6s, ramp: 4s,"
        " abort: {httpStatus: 503, percent: 80}}"
    )
    _, _, posted = await _run_schedule(experiment)
    assert [(t, what, body and body["abort"]["percent"]) for t, what, body in posted] == [
        (1.0, "POST /faults", 10.0),
        (2.0, "POST /faults", 30.0),
        (3.0, "POST /faults", 50.0),
        (4.0, "POST /faults", 70.0),
        (5.0, "POST /faults", 80),
        (7.0, "DELETE /faults/r", None),
    ]


async def test_a_mesh_fault_takes_effect_one_hop_after_its_start_and_its_end(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The schedule connects to the admin APIs when it starts, as an xDS stream is up before any
    # change: neither the fault nor its removal waits for a connect round trip.
    experiment = _load(
        "{name: d, target: back/0, start: 1s, duration: 2s, delay: {fixed: 50ms}}",
        "{name: a, target: back/0, start: 2s, duration: 2s, abort: {httpStatus: 503}}",
    )
    hop = 0.25  # one way; a power of two keeps the instants exact
    topology, schedule, posted = await _run_schedule(experiment, latency_s=hop)
    assert [(t, what) for t, what, _ in posted] == [
        (1.0 + hop, "POST /faults"),
        (2.0 + hop, "POST /faults"),
        (3.0 + hop, "DELETE /faults/d"),
        (4.0 + hop, "DELETE /faults/a"),
    ]
    assert topology.admin_connections == [2 * hop]  # one connection, opened at the start
    assert [(f.applied_at_s, f.removed_at_s) for f in schedule.applied] == [
        (1.0, 3.0 + 2 * hop),
        (2.0, 4.0 + 2 * hop),
    ]


async def test_summary_has_one_entry_per_window_with_fields_and_replicas(
    autojump_clock: trio.abc.Clock,
) -> None:
    experiment = _load(
        "{name: k, target: back, replicas: 50%, start: 2s, duration: 8s, every: 5s, for: 1s,"
        " kill: {}}"
    )
    _, schedule, _ = await _run_schedule(experiment)
    state = RunState(phases=phase_windows(experiment), faults=schedule.applied, measured_s=30.0)
    summary = build_summary(
        experiment, state, mode="real", started_at="", finished_at="", versions={}
    )
    chosen = experiment.faults[0].target.chosen
    assert chosen is not None
    replicas = [f"back/{index}" for index in chosen]
    fields = {"start": "2s", "duration": "8s", "every": "5s", "for": "1s", "kill": {},
              "replicas": "50%"}  # fmt: skip
    assert summary["faults"] == [
        {"name": "k", "target": "back", "kind": "kill", "applied_at_s": 2.0,
         "removed_at_s": 3.0, "fields": fields, "replicas": replicas, "window": 0},
        {"name": "k", "target": "back", "kind": "kill", "applied_at_s": 7.0,
         "removed_at_s": 8.0, "fields": fields, "replicas": replicas, "window": 1},
    ]  # fmt: skip


def test_fault_target_of_a_share_prints_as_its_service() -> None:
    assert str(FaultTarget("back", chosen=(0, 2))) == "back"
