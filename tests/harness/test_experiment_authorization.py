"""``spec.mesh.authorization``: read by the sidecar's own reader, `when` conditions included.

The loader checks a rule as a standalone sidecar's ``authorization:`` entry is checked (plus
``destination``), the sidecars of the destination get it back in their config, and a ``when``
header condition decides a request in a simulated mesh.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from harness.experiment import ExperimentError, parse_experiment
from harness.simulate import SimulatedTopology
from harness.topology import plan_replicas, sidecar_document
from meshcore.config import read_sidecar_config
from meshcore.model import Request
from meshcore.policy.authz import AuthorizationRule, HeaderCondition
from meshcore.transport.client import request_once
from meshcore.transport.memory import MemoryNetwork

EXPERIMENT = """\
apiVersion: meshchaos/v1
kind: Experiment
metadata: {name: tenants}
spec:
  duration: 10s
  services:
    - {name: frontend, script: [{sleep: 1ms}]}
  mesh:
    mtls: STRICT
    authorization:
{rules}
  load: {target: frontend, rate: 10/s}
"""

TENANT_RULES = """\
      - destination: frontend
        from: [loadgen, "cluster.local/ns/default/sa/frontend"]
        when: [{key: "request.headers[X-Tenant]", values: [blue, "green-*"], notValues: [green-old]}]
      - {destination: frontend, name: no-debug, action: DENY, when: [{key: "request.headers[x-debug]"}]}
"""  # noqa: E501


def _experiment(rules: str) -> str:
    return EXPERIMENT.replace("{rules}", rules.rstrip("\n"))


def _errors(rules: str) -> list[str]:
    with pytest.raises(ExperimentError) as caught:
        parse_experiment(_experiment(rules), "exp.yaml")
    return [str(d) for d in caught.value.diagnostics]


def test_when_conditions_are_read_as_a_sidecar_reads_them() -> None:
    experiment = parse_experiment(_experiment(TENANT_RULES), "exp.yaml")
    tenants, no_debug = experiment.mesh.authorization
    assert tenants.destination == no_debug.destination == "frontend"
    assert tenants.rule == AuthorizationRule(
        "ALLOW",
        "spec.mesh.authorization[0]",
        principals=("cluster.local/ns/default/sa/loadgen", "cluster.local/ns/default/sa/frontend"),
        when=(HeaderCondition("x-tenant", ("blue", "green-*"), ("green-old",)),),
    )
    assert no_debug.rule == AuthorizationRule(
        "DENY", "no-debug", when=(HeaderCondition("x-debug"),)
    )


def test_the_destination_sidecars_read_back_exactly_the_experiments_rules() -> None:
    experiment = parse_experiment(_experiment(TENANT_RULES), "exp.yaml")
    replicas = plan_replicas(experiment, MemoryNetwork())
    document = sidecar_document(experiment, replicas["frontend"][0], replicas, Path("ca"))
    config = read_sidecar_config(document)
    assert config.authorization == tuple(r.rule for r in experiment.mesh.authorization)


def test_a_mistake_in_when_names_the_field_and_its_place() -> None:
    rules = (
        "      - destination: frontend\n"
        "        when:\n"
        '          - {key: "request.headers[x-tenant]", value: [blue]}\n'
        '          - {key: "source.ip", values: ["10.0.0.1"]}\n'
        '          - {key: "request.headers[x-a]", notValues: [1]}\n'
    )
    assert _errors(rules) == [
        "exp.yaml:13:48: unknown field 'value' (did you mean 'values'?); "
        "known fields: key, notValues, values",
        "exp.yaml:14:19: key: expected request.headers[NAME], got 'source.ip'",
        "exp.yaml:15:55: notValues: expected a string, got 1",
    ]


def test_a_rule_is_checked_against_the_experiments_services_and_methods() -> None:
    rules = "      - {destination: frontend, from: [frontnd], methods: [get], actoin: DENY}\n"
    assert _errors(rules) == [
        "exp.yaml:11:40: from: unknown service 'frontnd' (did you mean 'frontend'?); "
        "services: frontend, loadgen",
        "exp.yaml:11:60: methods: expected one of GET, HEAD, POST, PUT, PATCH, DELETE, "
        "OPTIONS, got 'get'",
        "exp.yaml:11:66: unknown field 'actoin' (did you mean 'action'?); known fields: "
        "action, destination, from, methods, name, paths, when",
    ]


async def test_a_when_condition_decides_in_a_simulated_mesh(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    experiment = parse_experiment(_experiment(TENANT_RULES), "exp.yaml")
    topology = SimulatedTopology(experiment, tmp_path, MemoryNetwork())
    async with trio.open_nursery() as nursery:
        await nursery.start(topology.run)
        client = topology.client_network()  # mTLS as loadgen, as the load generator
        [entry] = topology.entrypoints("frontend")

        async def answer(*headers: tuple[str, str]) -> tuple[int, bytes]:
            request = Request("GET", "/", headers=headers)
            response = await request_once(client, entry, request)
            return response.status, response.body

        denied = (403, b"RBAC: access denied")
        assert (await answer(("x-tenant", "blue")))[0] == 200
        assert (await answer(("X-Tenant", "green-7")))[0] == 200
        assert await answer(("x-tenant", "green-old")) == denied  # notValues
        assert await answer(("x-tenant", "red")) == denied  # no ALLOW rule matches
        assert await answer() == denied  # the header is absent
        assert await answer(("x-tenant", "blue"), ("x-debug", "1")) == denied  # the DENY rule
        nursery.cancel_scope.cancel()
