"""``meshchaos validate`` on mistakes in the newer sections: toxics, certificate faults,
schedules (ramp, every/for), shares of replicas and authorization ``when`` conditions.

Each mistake is reported as ``FILE:LINE:COL: message`` at the field it is about, and the
command exits 2.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.experiment import ExperimentError, parse_experiment

ROOT = Path(__file__).resolve().parents[2]

HEAD = """\
apiVersion: meshchaos/v1
kind: Experiment
metadata: {name: mistakes}
spec:
  duration: 20s
  services:
    - {name: front, script: [{call: back}]}
    - {name: back, replicas: 4}
  mesh: {mtls: STRICT}
  load: {target: front, rate: 10/s}
  faults:
"""


def _errors(fault: str) -> list[str]:
    with pytest.raises(ExperimentError) as caught:
        parse_experiment(f"{HEAD}    - {fault}\n", "exp.yaml")
    return [str(d) for d in caught.value.diagnostics]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            "{target: back, toxic: {type: latency, latncy: 50ms}}",
            [
                "exp.yaml:12:22: latency: required field is missing",
                "exp.yaml:12:45: unknown field 'latncy' (did you mean 'latency'?); known fields: "
                "attributes, jitter, latency, percent, stream, toxicity, type",
            ],
        ),
        (
            "{target: back, toxic: {type: bandwidth, rate: fast}}",
            ["exp.yaml:12:53: rate: expected a bandwidth such as 10KB/s, got 'fast'"],
        ),
        (
            "{target: back, certExpired: {by: 1h}}",
            ["exp.yaml:12:36: unknown field 'by': certExpired takes none; write certExpired: {}"],
        ),
        (
            "{target: back, wrongIdentity: {as: front}}",
            ["exp.yaml:12:38: unknown field 'as'; known fields: service"],
        ),
        (
            "{target: back, untrustedCa: {}, delay: {fixed: 1s}}",
            [
                "exp.yaml:12:22: untrustedCa: a fault has one kind, and this one has delay and "
                "untrustedCa: write one fault per kind"
            ],
        ),
        (
            "{target: front->back, certExpired: {}}",
            [
                "exp.yaml:12:16: target: certExpired acts on a service or one replica, not on an "
                "edge; use partition or toxic for front->back"
            ],
        ),
        (
            "{target: back, ramp: fast, abort: {httpStatus: 503}}",
            [
                "exp.yaml:12:28: ramp: expected a duration with a unit such as 250ms, 1.5s or "
                "2m, got 'fast'"
            ],
        ),
        (
            "{target: back, for: 2s, kill: {}}",
            ["exp.yaml:12:7: a recurring fault needs every and for; every is missing"],
        ),
        (
            "{target: back, replicas: 150%, kill: {}}",
            ["exp.yaml:12:32: replicas: a percentage must lie between 0 and 100, got '150%'"],
        ),
        (
            "{target: back, replicas: half, kill: {}}",
            ["exp.yaml:12:32: replicas: expected a percentage such as 50 or '0.1%', got 'half'"],
        ),
        (
            "{target: back, replicas: 0%, kill: {}}",
            ["exp.yaml:12:32: replicas: a share of replicas must be above 0%"],
        ),
        (
            "{target: front->back, replicas: 50%, partition: {}}",
            [
                "exp.yaml:12:39: replicas: a share of replicas needs a service as target, not "
                "front->back"
            ],
        ),
    ],
)
def test_a_mistake_is_reported_at_its_field(fault: str, expected: list[str]) -> None:
    assert _errors(fault) == expected


def test_validate_exits_2_with_one_line_per_problem(tmp_path: Path) -> None:
    text = HEAD.replace(
        "  mesh: {mtls: STRICT}\n",
        "  mesh:\n"
        "    mtls: STRICT\n"
        "    authorization:\n"
        '      - {destination: back, when: [{key: "request.headers[x-a]", vals: [a]}]}\n',
    )
    path = tmp_path / "bad.yaml"
    path.write_text(
        text
        + "    - {target: back, every: 5s, for: 10s, kill: {}}\n"
        + "    - {target: back, toxic: {type: bandwith, rate: 10KB/s}}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}:12:66: unknown field 'vals' (did you mean 'values'?); known fields: key, "
        "notValues, values",
        f"{path}:15:38: for: for (10s) must be shorter than every (5s), or the fault never "
        "stops: drop every and for",
        f"{path}:16:36: type: expected one of latency, bandwidth, slow_close, timeout, "
        "reset_peer, slicer, limit_data, got 'bandwith'",
    ]


def test_wrong_identity_of_a_misspelt_service_is_a_warning() -> None:
    misspelt = parse_experiment(
        f"{HEAD}    - {{target: back, wrongIdentity: {{service: frnt}}}}\n", "exp.yaml"
    )
    assert misspelt.warnings == (
        "exp.yaml:12:47: warning: service: unknown service 'frnt' (did you mean 'front'?); "
        "services: front, back, impostor: the replica presents an identity no service of this "
        "experiment has",
    )
    for service in ("front", "impostor"):
        fault = f"{{target: back, wrongIdentity: {{service: {service}}}}}"
        assert parse_experiment(f"{HEAD}    - {fault}\n", "exp.yaml").warnings == ()
