"""Process start-up and supervision with the fork server: real processes, real signals.

The fork server's children are real processes in sessions of their own, signalled and reaped
like exec'd ones; they die with the server, and the server kills what is left when the
harness is done with it. A topology's replicas are paused, killed, restarted and torn down
through it, and a replica that cannot start is named with its log.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from harness.forkserver import ForkServer, open_fork_server
from harness.report import write_experiment_yaml
from harness.session import prepare
from harness.topology import ProcessTopology, Replica, TopologyError
from meshcore.errors import UpstreamError
from meshcore.model import Request
from meshcore.transport.client import request_once
from meshcore.transport.network import TcpNetwork

pytestmark = pytest.mark.e2e


def _state(pid: int) -> str:
    """Return the process state letter of ``pid`` (``T`` when stopped), ``-`` when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "-"
    return stat[stat.rindex(")") + 2]


def _marked(marker: Path) -> dict[int, int]:
    """Return ``{pid: ppid}`` of the live processes whose command line mentions ``marker``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if str(marker) in cmdline and _state(int(entry.name)) not in "ZX-":
            found[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return found


async def _until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (about processes: /proc has no event to wait on) for up to 10 s."""
    with trio.fail_after(10):
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.01)


def _sidecar_argv(tmp_path: Path) -> list[str]:
    """Return the command of a sidecar with no destination, listening on free ports."""
    admin, outbound, inbound, app = TcpNetwork().allocate("127.0.0.1", 4)
    config = tmp_path / "sidecar.yaml"
    document = {
        "name": "lonely",
        "admin": str(admin),
        "outbound": {"listen": str(outbound)},
        "inbound": {"listen": str(inbound), "app": str(app)},
    }
    config.write_text(yaml.safe_dump(document))
    return [sys.executable, "-m", "meshcore", "--config", str(config)]


async def _spawn(server: ForkServer, argv: list[str], log: Path, **env: str) -> Any:
    with log.open("ab") as file:
        return await server.spawn(argv, stdout=file.fileno(), env=env)


async def test_a_forked_child_has_its_session_environment_log_and_exit_code(
    tmp_path: Path,
) -> None:
    async with open_fork_server(tmp_path / "forkserver.log") as server:
        log = tmp_path / "child.log"
        child = await _spawn(server, _sidecar_argv(tmp_path), log)
        assert os.getsid(child.pid) == child.pid
        assert os.getpgid(child.pid) == child.pid
        os.killpg(child.pid, signal.SIGSTOP)
        await _until(lambda: _state(child.pid) == "T")
        os.killpg(child.pid, signal.SIGCONT)
        os.killpg(child.pid, signal.SIGKILL)
        with trio.fail_after(10):
            assert await child.wait() == -signal.SIGKILL

        missing = [sys.executable, "-m", "meshcore", "--config", str(tmp_path / "missing.yaml")]
        failed = await _spawn(server, missing, log)
        with trio.fail_after(10):
            assert await failed.wait() == 2  # run_standalone's code for an unreadable config
    assert "missing.yaml" in log.read_text()


async def test_leaving_the_fork_server_kills_what_it_still_has(tmp_path: Path) -> None:
    async with open_fork_server(tmp_path / "forkserver.log") as server:
        child = await _spawn(server, _sidecar_argv(tmp_path), tmp_path / "child.log")
        assert _marked(tmp_path).keys() == {server.pid, child.pid}
        os.killpg(child.pid, signal.SIGSTOP)  # stopped, it is killed all the same
    assert _marked(tmp_path) == {}


async def test_children_die_with_the_fork_server(tmp_path: Path) -> None:
    async with open_fork_server(tmp_path / "forkserver.log") as server:
        child = await _spawn(server, _sidecar_argv(tmp_path), tmp_path / "child.log")
        os.kill(server.pid, signal.SIGKILL)
        with trio.fail_after(10):
            assert await child.wait() == -signal.SIGKILL
        await _until(lambda: not _marked(tmp_path))


def _topology(tmp_path: Path, *services: dict[str, Any]) -> ProcessTopology:
    document = {
        "apiVersion": "meshchaos/v1",
        "kind": "Experiment",
        "metadata": {"name": "supervision"},
        "spec": {
            "duration": "10s",
            "services": list(services),
            "load": {"target": services[0]["name"], "rate": "1/s"},
        },
    }
    experiment = prepare(document)
    experiment_file = tmp_path / "experiment.yaml"
    write_experiment_yaml(experiment_file, experiment.document)
    return ProcessTopology(experiment, experiment_file, tmp_path, TcpNetwork())


async def _ready(replica: Replica) -> bool:
    try:
        response = await request_once(TcpNetwork(), replica.admin, Request("GET", "/ready"))
    except UpstreamError:
        return False
    return response.status == 200


ENV_APP = """
import os

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = os.environ["MESHCHAOS_SERVICE"] + "/" + os.environ["MESHCHAOS_REPLICA"]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})
"""


async def test_a_replica_is_paused_killed_restarted_and_torn_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "envapp.py").write_text(ENV_APP)
    monkeypatch.chdir(tmp_path)  # `app:` imports from the working directory
    back_spec = {"name": "back", "app": "envapp:app"}
    topology = _topology(tmp_path, {"name": "front", "script": [{"call": "back"}]}, back_spec)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(30):
            await nursery.start(topology.run)
        [back] = topology.replicas["back"]
        # A forked `app:` finds the replica's environment, as an exec'd process does.
        response = await request_once(TcpNetwork(), back.inbound, Request("GET", "/"))
        assert response.body == b"back/0"
        processes = _marked(tmp_path)
        [server] = [pid for pid, parent in processes.items() if parent == os.getpid()]
        children = {pid for pid, parent in processes.items() if parent == server}
        assert len(children) == 4  # two replicas, each an app and its sidecar

        topology.pause(back)
        # back's app and sidecar, and only them
        await _until(lambda: [_state(pid) for pid in children].count("T") == 2)
        topology.resume(back)
        await _until(lambda: all(_state(pid) != "T" for pid in children))

        topology.kill(back)
        await _until(lambda: len(_marked(tmp_path)) == 3)  # the server and front's two
        assert not await _ready(back)
        topology.restart(back)
        with trio.fail_after(15):
            while not await _ready(back):  # noqa: ASYNC110 (a process has no event to wait on)
                await trio.sleep(0.05)
        assert len(_marked(tmp_path)) == 5
        assert topology.crashes == []  # a kill is not a crash
        nursery.cancel_scope.cancel()
    assert _marked(tmp_path) == {}


@pytest.mark.parametrize("after_s", [0.2, 1.0])
async def test_a_start_cancelled_at_any_moment_leaves_nothing(
    tmp_path: Path, after_s: float
) -> None:
    topology = _topology(
        tmp_path, {"name": "front", "script": [{"call": "back"}]}, {"name": "back"}
    )
    with trio.move_on_after(after_s):  # while the server imports, or while children start
        async with trio.open_nursery() as nursery:
            await nursery.start(topology.run)
            await trio.sleep_forever()
    assert _marked(tmp_path) == {}


def _leaves(group: BaseException) -> list[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        return [leaf for inner in group.exceptions for leaf in _leaves(inner)]
    return [group]


async def test_a_replica_that_cannot_start_is_named_with_its_log(tmp_path: Path) -> None:
    topology = _topology(
        tmp_path,
        {"name": "front", "script": [{"call": "broken"}]},
        {"name": "broken", "app": "no_such_module:app"},
    )
    with trio.fail_after(15), pytest.raises(BaseExceptionGroup) as raised:  # well before 30 s
        async with trio.open_nursery() as nursery:
            await nursery.start(topology.run)
    [error] = _leaves(raised.value)
    assert isinstance(error, TopologyError)
    message = str(error)
    assert message.startswith(
        "replica broken/0 did not become ready: broken/0 exited with status 1"
    )
    assert "ModuleNotFoundError: No module named 'no_such_module'" in message
    assert _marked(tmp_path) == {}
