"""meshchaos as a pytest plugin: experiments as tests (DESIGN.md 4.6, docs/ci.md).

Installed with the package through the ``pytest11`` entry point. A test takes the ``meshchaos``
fixture and awaits ``meshchaos.run(path_or_experiment, **overrides)``::

    async def test_checkout_keeps_its_slos(meshchaos):
        result = await meshchaos.run("experiments/quickstart.yaml", duration="10s")
        assert result.passed, result.explain()

The fixture is synchronous, so it serves tests under ``trio_mode`` and ``@pytest.mark.trio``
alike (pytest-trio runs the test). This module only wires pytest to
:class:`harness.session.Meshchaos`, which does the work and knows nothing of pytest; it imports
that core only when a test asks for the fixture.

Options: ``--meshchaos-reports DIR`` keeps each test's reports under ``DIR/<test id>/``
(default: the test's ``tmp_path``); ``--meshchaos-mode real|simulate`` is the mode every
experiment runs in (default ``simulate``: seconds per experiment, the same answer every time);
a run's own ``mode=`` override wins over it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.session import Meshchaos

__all__ = ["meshchaos", "pytest_addoption"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--meshchaos-*`` options."""
    group = parser.getgroup("meshchaos", "service-mesh resilience experiments")
    group.addoption(
        "--meshchaos-reports",
        metavar="DIR",
        default=None,
        help="write each test's meshchaos reports under DIR/<test id>/ (default: tmp_path)",
    )
    group.addoption(
        "--meshchaos-mode",
        choices=("real", "simulate"),
        default="simulate",
        help="run every experiment in this mode (default: simulate; a run's mode= wins)",
    )


def _folder_name(nodeid: str) -> str:
    """Turn a test id into a folder name: ``tests/x.py::test_a[1]`` -> ``tests-x.py-test_a-1``."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", nodeid).strip("-")


@pytest.fixture
def meshchaos(request: pytest.FixtureRequest, tmp_path: Path) -> Meshchaos:
    """Run experiments from this test: ``result = await meshchaos.run(path, duration="5s")``."""
    from harness.session import Meshchaos

    reports = request.config.getoption("meshchaos_reports")
    if reports is not None:
        root = Path(reports) / _folder_name(request.node.nodeid)
    else:
        root = tmp_path / "meshchaos"
    return Meshchaos(root, mode=request.config.getoption("meshchaos_mode"))
