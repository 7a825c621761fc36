"""The topology of a run: every replica and its sidecar, started, watched and stopped.

:class:`ProcessTopology` is the real-mode backend: each replica is a hypercorn process and each
sidecar a ``python -m meshcore`` process on 127.0.0.1. A task owns each process: when the run
ends, fails or is interrupted, the task's cancellation terminates the process's whole process
group (SIGTERM, then SIGKILL after a grace period) and reaps it, so nothing outlives the run.
A process that exits while the run still needs it is recorded in ``crashes``.

The same interface (start, the addresses of replicas and their admin APIs, crashes) is what a
simulate-mode or Kubernetes backend implements.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import yaml

from harness.experiment import Experiment, FaultTarget
from meshcore.errors import UpstreamError
from meshcore.model import Endpoint, Request
from meshcore.transport.client import request_once
from meshcore.transport.network import Network

__all__ = ["ProcessTopology", "Replica", "TopologyError", "plan_replicas", "sidecar_document"]

LOOPBACK = "127.0.0.1"
_TERMINATE_GRACE_S = 2.0
_READY_POLL_S = 0.02


class TopologyError(Exception):
    """The topology could not be brought up (a replica did not become ready)."""


@dataclass(frozen=True, slots=True)
class Replica:
    """Where one replica and its sidecar listen."""

    service: str
    index: int
    app: Endpoint
    inbound: Endpoint
    outbound: Endpoint
    admin: Endpoint

    @property
    def name(self) -> str:
        """Return ``service/index``, as fault targets write it."""
        return f"{self.service}/{self.index}"

    @property
    def file_stem(self) -> str:
        """Return ``service-index``, for log and config file names."""
        return f"{self.service}-{self.index}"


def plan_replicas(experiment: Experiment, network: Network) -> dict[str, list[Replica]]:
    """Give every replica of every service its four addresses."""
    count = sum(service.replicas for service in experiment.services)
    free = iter(network.allocate(LOOPBACK, 4 * count))
    return {
        service.name: [
            Replica(service.name, index, next(free), next(free), next(free), next(free))
            for index in range(service.replicas)
        ]
        for service in experiment.services
    }


def sidecar_document(
    experiment: Experiment, replica: Replica, replicas: dict[str, list[Replica]]
) -> dict[str, Any]:
    """Return the standalone sidecar configuration (DESIGN.md 4.5) of one replica."""
    spec = experiment.service(replica.service)
    destinations: dict[str, Any] = {}
    for call in spec.calls():
        entry: dict[str, Any] = {"endpoints": [str(r.inbound) for r in replicas[call.service]]}
        policy = experiment.mesh.destination(call.service)
        entry["loadBalancer"] = {"simple": policy.load_balancer}
        destinations[call.service] = entry
    return {
        "name": replica.service,
        "seed": experiment.seed,
        "admin": str(replica.admin),
        "outbound": {"listen": str(replica.outbound)},
        "inbound": {"listen": str(replica.inbound), "app": str(replica.app)},
        "destinations": destinations,
    }


class ProcessTopology:
    """Real mode: replicas and sidecars as processes on 127.0.0.1."""

    def __init__(
        self, experiment: Experiment, experiment_file: Path, workdir: Path, network: Network
    ) -> None:
        self.experiment = experiment
        self.network = network
        self.replicas = plan_replicas(experiment, network)
        self.crashes: list[str] = []
        self._experiment_file = experiment_file
        self._logs = workdir / "logs"
        self._configs = workdir / "config"
        self._stopping = False

    def entrypoints(self, service: str) -> list[Endpoint]:
        """Return the inbound sidecar addresses of ``service``'s replicas (its mesh entry)."""
        return [replica.inbound for replica in self.replicas[service]]

    def admins(self, target: FaultTarget) -> list[Endpoint]:
        """Return the sidecar admin APIs where a mesh fault on ``target`` is applied.

        A fault on a service or replica acts in that replica's inbound sidecar; a fault on an
        edge ``a->b`` in every sidecar of ``a`` (for destination ``b``).
        """
        if target.source is not None:
            return [replica.admin for replica in self.replicas[target.source]]
        chosen = self.replicas[target.service]
        if target.replica is not None:
            chosen = [chosen[target.replica]]
        return [replica.admin for replica in chosen]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every process, wait until all are ready, then keep them until cancelled."""
        self._logs.mkdir(parents=True, exist_ok=True)
        self._configs.mkdir(parents=True, exist_ok=True)
        try:
            async with trio.open_nursery() as nursery:
                for replica in self._all_replicas():
                    config_path = self._configs / f"{replica.file_stem}-sidecar.yaml"
                    document = sidecar_document(self.experiment, replica, self.replicas)
                    config_path.write_text(yaml.safe_dump(document, sort_keys=False))
                    nursery.start_soon(
                        self._own_process,
                        f"{replica.name} sidecar",
                        [sys.executable, "-m", "meshcore", "--config", str(config_path)],
                        self._logs / f"{replica.file_stem}-sidecar.log",
                    )
                    nursery.start_soon(
                        self._own_process,
                        replica.name,
                        self._service_argv(replica),
                        self._logs / f"{replica.file_stem}.log",
                    )
                async with trio.open_nursery() as waiters:
                    for replica in self._all_replicas():
                        waiters.start_soon(self._wait_ready, replica)
                task_status.started()
        finally:
            self._stopping = True

    def _all_replicas(self) -> Iterable[Replica]:
        for replicas in self.replicas.values():
            yield from replicas

    def _service_argv(self, replica: Replica) -> list[str]:
        return [
            sys.executable, "-m", "harness.services", str(self._experiment_file),
            "--service", replica.service, "--replica", str(replica.index),
            "--listen", str(replica.app), "--outbound", str(replica.outbound),
        ]  # fmt: skip

    async def _own_process(self, name: str, argv: list[str], log_path: Path) -> None:
        with log_path.open("wb") as log:
            process = await trio.lowlevel.open_process(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                await process.wait()
                if not self._stopping:
                    self.crashes.append(f"{name} exited with status {process.returncode}")
            finally:
                with trio.CancelScope(shield=True):
                    await _terminate_group(process)

    async def _wait_ready(self, replica: Replica) -> None:
        """Wait until the sidecar's admin answers /ready and the app accepts connections."""
        last_error = "no answer yet"
        with trio.move_on_after(30) as deadline:
            while True:
                try:
                    response = await request_once(
                        self.network, replica.admin, Request("GET", "/ready")
                    )
                    if response.status == 200:
                        stream = await self.network.connect(replica.app)
                        await stream.aclose()
                        return
                    last_error = f"/ready answered {response.status}"
                except UpstreamError as error:
                    last_error = str(error)
                await trio.sleep(_READY_POLL_S)
        if deadline.cancelled_caught:
            tails = "\n".join(
                f"--- {path.name}\n{_tail(path)}"
                for path in (
                    self._logs / f"{replica.file_stem}.log",
                    self._logs / f"{replica.file_stem}-sidecar.log",
                )
            )
            raise TopologyError(
                f"replica {replica.name} did not become ready within 30 s ({last_error});"
                f" its logs end with:\n{tails}"
            )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _terminate_group(process: trio.Process) -> None:
    """Stop ``process`` and everything it started: SIGTERM, a grace period, then SIGKILL."""
    _signal_group(process.pid, signal.SIGTERM)
    with trio.move_on_after(_TERMINATE_GRACE_S):
        await process.wait()
    # Whatever is left of the group (the leader, or children it left behind) gets no grace.
    _signal_group(process.pid, signal.SIGKILL)
    await process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
