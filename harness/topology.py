"""The topology of a run: every replica and its sidecar, started, watched and stopped.

:class:`ProcessTopology` is the real-mode backend: each replica is a ``python -m
harness.services`` process and each sidecar a ``python -m meshcore`` process on 127.0.0.1
(forked from the run's fork server, :mod:`harness.forkserver`), each an
:class:`~harness.processes.OwnedProcess` whose task kills and reaps its whole process group when
the run ends, fails or is interrupted, so nothing outlives the run. A process that exits while
the run still needs it is recorded in ``crashes``. Chaos kills, restarts, pauses and resumes a
replica together with its sidecar, as a pod's containers go down together.

The same interface (start, the addresses of replicas and their admin APIs, crashes) is what a
simulate-mode or Kubernetes backend implements.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import yaml

from harness.experiment import LOADGEN, Experiment, FaultTarget
from harness.forkserver import ForkServer, open_fork_server
from harness.processes import OwnedProcess
from meshcore.ca import CertificateAuthority
from meshcore.destination import policy_document
from meshcore.errors import UpstreamError
from meshcore.identity import spiffe_id
from meshcore.model import Endpoint, Request
from meshcore.policy.authz import AuthorizationRule
from meshcore.transport.client import request_once
from meshcore.transport.network import Network
from meshcore.transport.tls import TlsNetwork, WorkloadTls

__all__ = [
    "ProcessTopology",
    "Replica",
    "Topology",
    "TopologyError",
    "expand_command",
    "plan_replicas",
    "service_environment",
    "sidecar_document",
]

LOOPBACK = "127.0.0.1"
# Every replica's endpoint carries this label, so DestinationRule subsets can select replicas
# (a canary is replica 2: `subsets: [{name: canary, labels: {meshchaos.io/replica: "2"}}]`).
REPLICA_LABEL = "meshchaos.io/replica"
_READY_POLL_S = 0.02
# libyaml's dumper writes the same text as PyYAML's, 5x faster: 20 configs cost 15 ms, not 75.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


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
    planned = {
        service.name: [
            Replica(service.name, index, next(free), next(free), next(free), next(free))
            for index in range(service.replicas)
        ]
        for service in experiment.services
    }
    for service in experiment.services:
        if service.port is not None:  # a command that listens on a port of its own choosing
            app = Endpoint(LOOPBACK, service.port)
            planned[service.name] = [dataclasses.replace(r, app=app) for r in planned[service.name]]
    return planned


def security_document(experiment: Experiment, service: str, ca: Path | None) -> dict[str, Any]:
    """Return the ``mtls`` and ``authorization`` fields of ``service``'s sidecar configuration.

    Each sidecar issues its own certificate from the run's CA folder ``ca``. Authorization
    rules go to the sidecars of their destination, named as the experiment named them (by
    default after their place in the file), so a denial's details point at the rule.
    """
    document: dict[str, Any] = {}
    if experiment.mesh.mtls != "DISABLE" and ca is not None:
        document["mtls"] = {"mode": experiment.mesh.mtls, "ca": str(ca)}
    rules = [
        authorization_document(rule.rule)
        for rule in experiment.mesh.authorization
        if rule.destination == service
    ]
    if rules:
        document["authorization"] = rules
    return document


def authorization_document(rule: AuthorizationRule) -> dict[str, Any]:
    """Write ``rule`` as an ``authorization:`` entry of a sidecar config, which reads it back."""
    document: dict[str, Any] = {
        "name": rule.name,
        "action": rule.action,
        "from": list(rule.principals),
        "paths": list(rule.paths),
        "methods": list(rule.methods),
    }
    if rule.when:
        document["when"] = [
            {"key": f"request.headers[{condition.header}]", "values": list(condition.values),
             "notValues": list(condition.not_values)}
            for condition in rule.when
        ]  # fmt: skip
    return document


def sidecar_document(
    experiment: Experiment,
    replica: Replica,
    replicas: dict[str, list[Replica]],
    ca: Path | None = None,
) -> dict[str, Any]:
    """Return the standalone sidecar configuration (DESIGN.md 4.5) of one replica."""
    spec = experiment.service(replica.service)
    destinations: dict[str, Any] = {}
    called = [call.service for call in spec.calls()]
    # A route's mirror sends to another service: the sidecar needs its endpoints too.
    mirrored = [
        host for name in called for host in experiment.mesh.destination(name).mirror_hosts()
    ]
    for name in dict.fromkeys([*called, *mirrored]):
        policy = experiment.mesh.destination(name)
        endpoints = [_endpoint_document(experiment, r) for r in replicas[name]]
        destinations[name] = {"endpoints": endpoints, **policy_document(policy)}
    return {
        "name": replica.service,
        "seed": experiment.seed,
        "admin": str(replica.admin),
        "outbound": {"listen": str(replica.outbound)},
        "inbound": {"listen": str(replica.inbound), "app": str(replica.app)},
        "destinations": destinations,
        **security_document(experiment, replica.service, ca),
    }


def _endpoint_document(experiment: Experiment, replica: Replica) -> dict[str, Any]:
    """Return one endpoint with its labels: the service's, plus the replica's index."""
    labels = {**experiment.service(replica.service).labels, REPLICA_LABEL: str(replica.index)}
    return {"address": str(replica.inbound), "labels": labels}


class Topology:
    """What every backend shares: the replicas' addresses and the ways into the mesh.

    A backend adds ``run`` (start everything, report ready, keep it until cancelled) and the
    process faults ``kill``, ``restart``, ``pause`` and ``resume`` (:class:`ChaosTarget`).
    """

    def __init__(self, experiment: Experiment, workdir: Path, network: Network) -> None:
        self.experiment = experiment
        self.network = network
        self.replicas = plan_replicas(experiment, network)
        self.crashes: list[str] = []
        # The mesh CA of this run (mtls STRICT or PERMISSIVE): sidecars issue their own
        # certificates from it, and the load generator its `loadgen` one.
        self.ca_folder = workdir / "mesh-ca"
        # Simulate mode's `spec.network.tls: handshake`: real mTLS handshakes, data in the clear.
        self.tls_cleartext = False

    def create_ca(self) -> Path | None:
        """Create the run's mesh CA folder, unless mtls is DISABLE; return it."""
        if self.experiment.mesh.mtls == "DISABLE":
            return None
        CertificateAuthority.create().save(self.ca_folder)
        return self.ca_folder

    def client_network(self) -> Network:
        """Return the network the load generator enters the mesh through (after ``run``).

        Unless mtls is DISABLE, that is mTLS as the workload ``loadgen`` (Istio's auto mTLS:
        the target's sidecar accepts it in STRICT and PERMISSIVE alike), and the target must
        present its own SPIFFE ID.
        """
        if self.experiment.mesh.mtls == "DISABLE":
            return self.network
        certificate = CertificateAuthority.load(self.ca_folder).issue(spiffe_id(LOADGEN))
        target = spiffe_id(self.experiment.load.target)
        return TlsNetwork(
            self.network,
            WorkloadTls(certificate),
            expected=lambda e: target,
            cleartext=self.tls_cleartext,
        )

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
        return [replica.admin for replica in self.chosen(target)]

    def chosen(self, target: FaultTarget) -> list[Replica]:
        """Return the replicas a fault on a service, a replica or a share ``target`` acts on."""
        replicas = self.replicas[target.service]
        if target.replica is not None:
            return [replicas[target.replica]]
        if target.chosen is not None:
            return [replicas[index] for index in target.chosen]
        return replicas

    def all_replicas(self) -> Iterable[Replica]:
        """Yield every replica, service by service in the file's order."""
        for replicas in self.replicas.values():
            yield from replicas


class ProcessTopology(Topology):
    """Real mode: replicas and sidecars as processes on 127.0.0.1.

    Sidecars and synthetic or ``app:`` services are forked from a fork server
    (:mod:`harness.forkserver`) that imported them once, which is what makes a 20-replica
    topology ready in a few seconds on 2 cores; ``command:`` services are exec'd.
    ``fork_server=False`` execs every process (``bench/startup.py --exec`` compares).
    """

    def __init__(
        self,
        experiment: Experiment,
        experiment_file: Path,
        workdir: Path,
        network: Network,
        *,
        fork_server: bool = True,
    ) -> None:
        super().__init__(experiment, workdir, network)
        self._fork_server = fork_server
        self._experiment_file = experiment_file
        self._logs = workdir / "logs"
        self._configs = workdir / "config"
        # Each replica's processes: its app and its sidecar, like a pod's two containers.
        self._processes: dict[str, tuple[OwnedProcess, OwnedProcess]] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every process, wait until all are ready, then keep them until cancelled."""
        self._logs.mkdir(parents=True, exist_ok=True)
        self._configs.mkdir(parents=True, exist_ok=True)
        if not self._fork_server:
            await self._run(None, task_status)
            return
        # The server imports while the CA and the configs are written. It is stopped only
        # after the nursery of `_run` has reaped every child.
        async with open_fork_server(self._logs / "forkserver.log") as fork_server:
            await self._run(fork_server, task_status)

    async def _run(
        self, fork_server: ForkServer | None, task_status: trio.TaskStatus[None]
    ) -> None:
        ca = self.create_ca()
        async with trio.open_nursery() as nursery:
            for replica in self.all_replicas():
                config_path = self._configs / f"{replica.file_stem}-sidecar.yaml"
                document = sidecar_document(self.experiment, replica, self.replicas, ca)
                config_path.write_text(yaml.dump(document, Dumper=_DUMPER, sort_keys=False))
                sidecar = OwnedProcess(
                    f"{replica.name} sidecar",
                    [sys.executable, "-m", "meshcore", "--config", str(config_path)],
                    self._logs / f"{replica.file_stem}-sidecar.log",
                    self.crashes.append,
                    fork_server=fork_server,
                )
                app = OwnedProcess(
                    replica.name,
                    self._service_argv(replica),
                    self._logs / f"{replica.file_stem}.log",
                    self.crashes.append,
                    env=service_environment(replica),
                    fork_server=fork_server,  # a `command:` is exec'd all the same
                )
                self._processes[replica.name] = (app, sidecar)
                nursery.start_soon(sidecar.run)
                nursery.start_soon(app.run)
            async with trio.open_nursery() as waiters:
                for replica in self.all_replicas():
                    waiters.start_soon(self._wait_ready, replica)
            task_status.started()

    def kill(self, replica: Replica) -> None:
        """SIGKILL the replica and its sidecar; they stay down until :meth:`restart`."""
        for process in self._processes[replica.name]:
            process.kill()

    def restart(self, replica: Replica) -> None:
        """Start a killed replica and its sidecar again (same ports, same configuration)."""
        for process in self._processes[replica.name]:
            process.restart()

    def pause(self, replica: Replica) -> None:
        """SIGSTOP the replica and its sidecar (connections stay open, nothing answers)."""
        for process in self._processes[replica.name]:
            process.pause()

    def resume(self, replica: Replica) -> None:
        """SIGCONT a paused replica and its sidecar."""
        for process in self._processes[replica.name]:
            process.resume()

    def _service_argv(self, replica: Replica) -> list[str]:
        command = self.experiment.service(replica.service).command
        if command is not None:
            return expand_command(command, service_environment(replica))
        return [
            sys.executable, "-m", "harness.services", str(self._experiment_file),
            "--service", replica.service, "--replica", str(replica.index),
            "--listen", str(replica.app), "--outbound", str(replica.outbound),
        ]  # fmt: skip

    async def _wait_ready(self, replica: Replica) -> None:
        """Wait until the sidecar's admin answers /ready and the app accepts connections.

        A replica whose app or sidecar exits meanwhile fails at once, not after the timeout.
        """
        last_error = "no answer yet"
        with trio.move_on_after(30) as deadline:
            # No polling while the fork server imports: 40 pollers would take its CPU.
            for process in self._processes[replica.name]:
                await process.wait_started()
            while True:
                crashes = [p.crash for p in self._processes[replica.name] if p.crash is not None]
                if crashes:
                    raise TopologyError(
                        f"replica {replica.name} did not become ready: {'; '.join(crashes)};"
                        f" its logs end with:\n{self._log_tails(replica)}"
                    )
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
            raise TopologyError(
                f"replica {replica.name} did not become ready within 30 s ({last_error});"
                f" its logs end with:\n{self._log_tails(replica)}"
            )

    def _log_tails(self, replica: Replica) -> str:
        return "\n".join(
            f"--- {path.name}\n{_tail(path)}"
            for path in (
                self._logs / f"{replica.file_stem}.log",
                self._logs / f"{replica.file_stem}-sidecar.log",
            )
        )


def service_environment(replica: Replica) -> dict[str, str]:
    """Return what a replica's process finds in its environment, on top of the harness's.

    ``MESHCHAOS_PORT`` is the port to listen on (127.0.0.1), ``MESHCHAOS_OUTBOUND`` the
    outbound sidecar (``host:port``; send plain HTTP there with ``Host: <service>``),
    ``MESHCHAOS_SERVICE`` and ``MESHCHAOS_REPLICA`` who it is.
    """
    return {
        "MESHCHAOS_PORT": str(replica.app.port),
        "MESHCHAOS_OUTBOUND": str(replica.outbound),
        "MESHCHAOS_SERVICE": replica.service,
        "MESHCHAOS_REPLICA": str(replica.index),
    }


def expand_command(command: Iterable[str], environment: dict[str, str]) -> list[str]:
    """Replace ``$(NAME)`` in each argument by ``environment[NAME]``, as Kubernetes does.

    A reference to a name that is not there is left as written (Kubernetes' rule too).
    """
    pattern = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
    return [
        pattern.sub(lambda m: environment.get(m.group(1), m.group(0)), argument)
        for argument in command
    ]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
