"""The experiment's mtls and authorization reach the sidecar configs, and those configs load."""

from __future__ import annotations

from pathlib import Path

from harness.experiment import parse_experiment
from harness.topology import plan_replicas, sidecar_document
from meshcore.config import read_sidecar_config
from meshcore.transport.memory import MemoryNetwork

EXPERIMENT = """\
apiVersion: meshchaos/v1
kind: Experiment
metadata: {name: secure}
spec:
  duration: 10s
  services:
    - {name: frontend, script: [{call: payments}]}
    - {name: payments}
  mesh:
    mtls: {mode}
    authorization:
      - {destination: payments, action: ALLOW, from: [frontend, loadgen]}
      - {destination: payments, action: DENY, paths: ["/admin/*"], methods: [DELETE]}
  load: {target: frontend, rate: 10/s}
"""


def _configs(mode: str, ca: Path | None) -> dict[str, dict[str, object]]:
    experiment = parse_experiment(EXPERIMENT.replace("{mode}", mode), "exp.yaml")
    replicas = plan_replicas(experiment, MemoryNetwork())
    return {
        service: sidecar_document(experiment, chosen[0], replicas, ca)
        for service, chosen in replicas.items()
    }


def test_strict_sidecars_get_the_ca_and_their_destination_rules(tmp_path: Path) -> None:
    configs = _configs("STRICT", tmp_path)
    assert configs["frontend"]["mtls"] == {"mode": "STRICT", "ca": str(tmp_path)}
    assert "authorization" not in configs["frontend"]
    payments = read_sidecar_config(configs["payments"])
    assert payments.mtls_mode == "STRICT"
    assert payments.mtls_ca == str(tmp_path)
    allow, deny = payments.authorization
    assert allow.name == "spec.mesh.authorization[0]"
    assert allow.principals == (
        "cluster.local/ns/default/sa/frontend",
        "cluster.local/ns/default/sa/loadgen",
    )
    assert (deny.action, deny.paths, deny.methods) == ("DENY", ("/admin/*",), ("DELETE",))


def test_disable_sidecars_have_no_mtls(tmp_path: Path) -> None:
    configs = _configs("DISABLE", tmp_path)
    assert "mtls" not in configs["frontend"]
    assert read_sidecar_config(configs["payments"]).mtls_mode == "DISABLE"
