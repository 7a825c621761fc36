"""Every file of experiments/ is valid and runnable by this build (`meshchaos validate`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.session import prepare

EXPERIMENTS = sorted((Path(__file__).resolve().parents[2] / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[path.stem for path in EXPERIMENTS])
def test_every_experiment_is_valid_and_documented(path: Path) -> None:
    experiment = prepare(path, mode="real")  # raises ExperimentError with FILE:LINE:COL
    assert experiment.warnings == ()
    assert experiment.description, "a lesson says what it teaches"
    assert experiment.slos, "a lesson says what holds"
    assert experiment.warmup_s + experiment.duration_s <= 60
    readme = (path.parent / "README.md").read_text()
    assert path.name in readme, f"{path.name} is not listed in experiments/README.md"
