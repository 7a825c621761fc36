"""The ``meshchaos`` fixture, through pytester: options, errors, both Trio styles, a real run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

TINY = """\
apiVersion: meshchaos/v1
kind: Experiment
metadata: {name: tiny}
spec:
  duration: 3s
  services:
    - {name: web, script: [{sleep: 2ms}]}
  mesh: {mtls: DISABLE}
  load: {target: web, rate: 20/s}
  slos:
    - {objective: "p99 < 1s"}
"""

INI = """\
[pytest]
trio_mode = true
filterwarnings = error
"""


@pytest.fixture
def tester(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makefile(".yaml", tiny=TINY, bad=TINY.replace("duration: 3s", "duration: 3"))
    return pytester


def test_the_options_are_registered(tester: pytest.Pytester) -> None:
    result = tester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--meshchaos-reports=DIR*", "*--meshchaos-mode=*"])


def test_an_invalid_experiment_fails_before_anything_runs(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest
        from harness.experiment import ExperimentError

        async def test_bad(meshchaos, tmp_path):
            with pytest.raises(ExperimentError) as caught:
                await meshchaos.run("bad.yaml")
            assert [str(d) for d in caught.value.diagnostics] == [
                "bad.yaml:5:13: duration: expected a duration with a unit such as 250ms, "
                "1.5s or 2m, got 3"
            ]
            assert not (tmp_path / "meshchaos").exists()

        async def test_unknown_override(meshchaos):
            with pytest.raises(TypeError, match="unknown override.s. durration; known: duration"):
                await meshchaos.run("tiny.yaml", durration="1s")

        async def test_a_bad_override(meshchaos):
            with pytest.raises(ValueError, match="expected a duration with a unit"):
                await meshchaos.run("tiny.yaml", duration="soon")
        """
    )
    tester.runpytest().assert_outcomes(passed=3)


def test_simulate_is_the_default_mode_and_runs_in_virtual_time(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        async def test_simulate(meshchaos):
            result = await meshchaos.run("tiny.yaml")
            assert result.passed, result.explain()
            assert result.summary["mode"] == "simulate"
            assert result.scope("all").percentile_ms(50) == pytest.approx(2.0, rel=1e-3)
        """
    )
    tester.runpytest().assert_outcomes(passed=1)


def test_the_fixture_serves_trio_marked_tests_without_trio_mode(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makefile(".yaml", bad=TINY.replace("duration: 3s", "duration: 3"))
    pytester.makepyfile(
        """
        import pytest
        import trio
        from harness.experiment import ExperimentError

        @pytest.mark.trio
        async def test_marked(meshchaos):
            assert trio.lowlevel.current_task() is not None
            with pytest.raises(ExperimentError):
                await meshchaos.run("bad.yaml")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.e2e
def test_a_real_run_from_a_test(tester: pytest.Pytester, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    tester.makepyfile(
        textwrap.dedent(
            """
            from pathlib import Path

            import yaml

            async def test_tiny(meshchaos):
                document = yaml.safe_load(Path("tiny.yaml").read_text())
                document["spec"]["slos"].append(
                    {"name": "impossible", "objective": "p99 < 1us", "severity": "warn"}
                )
                result = await meshchaos.run(document, duration="3s", seed=7)
                assert result.passed, result.explain()
                assert result.summary["experiment"]["seed"] == 7
                assert result.summary["mode"] == "real"
                stats = result.scope("all")
                assert 40 <= stats.requests <= 70
                assert stats.error_rate == 0
                assert 2 <= stats.percentile_ms(50) < 1000
                explanation = result.explain()
                assert "WARN 'impossible': observed " in explanation
                assert "objective p99 < 1us, scope all" in explanation
                assert result.exit_code == 0
            """
        )
    )
    result = tester.runpytest("--meshchaos-reports", str(reports), "--meshchaos-mode", "real")
    result.assert_outcomes(passed=1)
    [run_dir] = (reports / "test_a_real_run_from_a_test.py-test_tiny").iterdir()
    assert run_dir.name == "tiny"
    assert json.loads((run_dir / "summary.json").read_text())["verdict"] == "pass"
    assert (run_dir / "junit.xml").is_file()
