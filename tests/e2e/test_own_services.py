"""Bring your own service (``app:`` and ``command:``) and a replica that crashes by itself.

Real processes on 127.0.0.1: the user's ASGI app served by hypercorn and a user's trio/h11
program, each behind its sidecar, called by a scripted frontend.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.e2e

SERVICES = Path(__file__).resolve().parent / "services"


def _experiment(name: str, command: list[str], duration: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "meshchaos/v1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "seed": 1,
            "warmup": "1s",
            "duration": duration,
            "services": [
                {"name": "frontend", "script": [[{"call": "own-app"}, {"call": "own-cmd"}]]},
                {"name": "own-app", "app": "byo_app:app"},
                {"name": "own-cmd", "command": command},
            ],
            "mesh": {"mtls": "STRICT"},
            "load": {"target": "frontend", "rate": "20/s", "connections": 8},
            **spec,
        },
    }


def _run(tmp_path: Path, document: dict[str, Any]) -> tuple[subprocess.CompletedProcess[str], Any]:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(document))
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(path), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=SERVICES,  # `app: byo_app:app` imports from the working directory, as hypercorn does
    )
    return result, json.loads((out / "summary.json").read_text())


def test_an_asgi_app_and_a_command_serve_behind_sidecars(tmp_path: Path) -> None:
    command = [sys.executable, str(SERVICES / "h11_server.py")]
    document = _experiment("own-services", command, "4s", slos=[{"objective": "error_rate < 1%"}])
    result, summary = _run(tmp_path, document)
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary["crashes"] == []
    assert summary["scopes"]["all"]["requests"] >= 60
    assert summary["scopes"]["all"]["errors"] == 0


def test_a_replica_that_crashes_by_itself_is_reported(tmp_path: Path) -> None:
    # The program exits 2.5 s after it starts: after the topology is ready and the warmup.
    command = [sys.executable, str(SERVICES / "h11_server.py"), "--exit-after", "2.5"]
    result, summary = _run(tmp_path, _experiment("own-crash", command, "5s"))
    assert result.returncode == 0, result.stdout + result.stderr  # no SLO: the run passes
    (crash,) = summary["crashes"]
    assert crash.startswith("own-cmd/0 exited with status 3 at ")
    # The run's logs are gzipped when it ends, and the crash names the compressed log.
    log = tmp_path / "run" / "logs" / "own-cmd-0.log.gz"
    assert crash.endswith(f"its log: {log}")
    assert log.exists()
    assert not log.with_suffix("").exists()
    assert f"crash: {crash}" in result.stderr
    # Requests fail once it is gone (the frontend answers 502), and not before.
    errors = dict(summary["intervals"]["errors"]["all"])
    assert errors, summary["intervals"]
    assert sum(errors.values()) >= 20
    first_error = min(errors)
    assert all(errors.get(i, 0) > 0 for i in range(first_error + 1, 5))
