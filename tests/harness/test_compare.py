"""meshchaos compare on synthetic runs: a known regression fails, noise and identity do not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from runfolders import synthetic_run

from harness.cli import main
from harness.compare import ALPHA, Delta, compare_runs
from harness.report import load_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic report folders (summary.json and latency.hlog only), written once."""
    root = tmp_path_factory.mktemp("runs")
    folders = {
        "a": dict(seed=1),
        "noise": dict(seed=2),  # the same build, another run
        "slower": dict(seed=3, slowdown=1.3),  # every request 30 % slower
        "faster": dict(seed=4, slowdown=0.7),
        "no-edge": dict(seed=5, edge=False),
    }
    for name, options in folders.items():
        synthetic_run(root / name, render=False, **options)  # type: ignore[arg-type]
    return {name: root / name for name in folders}


def compare(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", *args])
    code = exit_info.value.code
    assert isinstance(code, int)
    return code


def test_a_run_compared_with_itself_exits_0_with_nothing_significant(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert compare(str(runs["a"]), str(runs["a"]), "--out", str(out), "--max-regression", "0") == 0
    printed = capsys.readouterr().out
    assert "**No significant regression.**" in printed
    assert (out / "compare.md").read_text() in printed
    assert (out / "spectrum.png").is_file()
    assert (out / "latency.png").is_file()
    comparison = compare_runs(load_run(runs["a"]), load_run(runs["a"]))
    assert all(delta.change == 0 and not delta.significant for delta in comparison.deltas)


def test_a_known_regression_exits_1_above_the_threshold_and_0_below(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = str(runs["a"]), str(runs["slower"])
    assert compare(a, b, "--out", str(tmp_path / "10"), "--max-regression", "10") == 1
    printed = capsys.readouterr().out
    assert "significant regressions:** " in printed
    assert "exceed the --max-regression of 10 %" in printed
    assert compare(a, b, "--out", str(tmp_path / "60"), "--max-regression", "60") == 0
    assert "None exceeds the --max-regression of 60 %." in capsys.readouterr().out
    # Without a threshold the table is written and the exit code stays 0.
    assert compare(a, b, "--out", str(tmp_path / "none")) == 0

    comparison = compare_runs(load_run(runs["a"]), load_run(runs["slower"]))
    p99 = delta_of(comparison.deltas, "phase=baseline", "p99")
    assert p99.significant
    assert p99.worse
    assert p99.change_pct == pytest.approx(30.0, abs=10.0)


def test_noise_between_two_runs_of_one_build_is_not_a_regression(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    assert compare(str(runs["a"]), str(runs["noise"]), "--out", str(tmp_path),
                   "--max-regression", "10") == 0  # fmt: skip
    comparison = compare_runs(load_run(runs["a"]), load_run(runs["noise"]))
    p99 = delta_of(comparison.deltas, "all", "p99")
    assert p99.change != 0  # the totals differ ...
    assert not p99.significant  # ... but not beyond the noise between intervals
    assert p99.p_value is not None
    assert p99.p_value > ALPHA


def test_an_improvement_is_significant_but_never_a_regression(runs: dict[str, Path]) -> None:
    comparison = compare_runs(load_run(runs["a"]), load_run(runs["faster"]))
    p50 = delta_of(comparison.deltas, "phase=baseline", "p50")
    assert p50.significant
    assert not p50.worse
    assert p50.regression_pct == 0.0
    assert comparison.regressions(0.0) == []


def test_scopes_are_matched_by_name_and_the_unmatched_listed(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert compare(str(runs["a"]), str(runs["no-edge"]), "--out", str(tmp_path)) == 0
    printed = capsys.readouterr().out
    assert "- only in A: `edge=checkout->payments`" in printed
    comparison = compare_runs(load_run(runs["a"]), load_run(runs["no-edge"]))
    assert comparison.only_in_a == ("edge=checkout->payments",)
    assert comparison.only_in_b == ()
    assert {d.scope for d in comparison.deltas} == {
        "all", "phase=baseline", "phase=fault", "phase=recovery",
    }  # fmt: skip


def test_bad_input_exits_2(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert compare(str(tmp_path / "missing"), str(runs["a"]), "--out", str(tmp_path)) == 2
    assert "not a report folder" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(runs["a"], broken)
    (broken / "summary.json").write_text("[]")
    assert compare(str(runs["a"]), str(broken), "--out", str(tmp_path)) == 2
    assert compare(str(runs["a"]), str(runs["a"]), "--max-regression", "-5") == 2
    assert "must not be negative" in capsys.readouterr().err


def test_change_percentages_and_directions() -> None:
    latency = Delta("all", "p99", "ms", 10.0, 12.0, 0.001, higher_is_worse=True)
    assert latency.change_pct == pytest.approx(20.0)
    assert latency.regression_pct == pytest.approx(20.0)
    throughput = Delta("all", "throughput", "req/s", 100.0, 90.0, 0.001, higher_is_worse=False)
    assert throughput.worse
    assert throughput.regression_pct == pytest.approx(10.0)
    errors = Delta("all", "error rate", "%", 0.0, 0.5, 0.001, higher_is_worse=True)
    assert errors.change_pct == float("inf")  # from no errors at all: beyond any threshold
    assert errors.change_unit == "pp"
    untested = Delta("all", "error rate", "%", 0.0, 0.5, None, higher_is_worse=True)
    assert untested.regression_pct == 0.0


def delta_of(deltas: tuple[Delta, ...], scope: str, metric: str) -> Delta:
    return next(d for d in deltas if d.scope == scope and d.metric == metric)
