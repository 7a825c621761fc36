"""The CI-facing outputs: verdict, junit.xml read back, summary.md and the terminal table."""

from __future__ import annotations

import dataclasses
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness.slo import SloResult, check_slo
from harness.verdict import (
    explain,
    overall_verdict,
    render_markdown,
    render_rich_verdict,
    render_verdict_table,
    write_junit,
)


@dataclass(frozen=True)
class FlatStats:
    """A scope whose every request took the same time (the SLO tests use real histograms)."""

    requests: int
    errors: int
    latency_ms: float
    duration_s: float = 60.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests

    @property
    def throughput_rps(self) -> float:
        return self.requests / self.duration_s

    @property
    def mean_ms(self) -> float:
        return self.latency_ms

    @property
    def max_ms(self) -> float:
        return self.latency_ms

    def percentile_ms(self, percentile: float) -> float:
        return self.latency_ms


FAULT = FlatStats(requests=3000, errors=3, latency_ms=312.0)
ALL = FlatStats(requests=12000, errors=6, latency_ms=41.3)


def results() -> list[SloResult]:
    return [
        check_slo("checkout p99 under fault", "p99 < 250ms", {"phase": "fault"}, "error", FAULT),
        check_slo(None, "error_rate < 0.5%", {}, "error", ALL),
        check_slo("mean | pipe", "mean < 40ms", {}, "warn", ALL),
        check_slo("amplifies", "retry_amplification <= 1.2", {}, "warn", ALL),
    ]


def make_summary(slos: list[SloResult], **extra: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "schema": "meshchaos.summary/v1",
        "experiment": {"name": "payments-brownout", "seed": 42, "sha256": "ab12"},
        "mode": "simulate",
        "started_at": "2026-11-26T10:00:00+00:00",
        "finished_at": "2026-11-26T10:01:05.5+00:00",
        "versions": {"meshchaos": "0.1.0"},
        "phases": [{"name": "baseline", "start_s": 0.0, "end_s": 20.0}],
        "faults": [
            {
                "name": "payments-slow",
                "target": "payments",
                "kind": "delay",
                "applied_at_s": 20.0,
                "removed_at_s": 35.0,
            },
            {
                "name": "inventory-down",
                "target": "inventory/0",
                "kind": "kill",
                "applied_at_s": 25.25,
                "removed_at_s": None,
            },
        ],
        "scopes": {},
        "load": {
            "target_rps": 200.0,
            "achieved_rps": 199.64,
            "dropped": 7,
            "generator_lag_ms": {"p99": 1.25},
        },
        "slos": [result.to_json() for result in slos],
        "verdict": overall_verdict(slos),
    }
    summary.update(extra)
    return summary


@pytest.fixture
def summary() -> dict[str, Any]:
    return make_summary(results())


# --- verdict -------------------------------------------------------------------------------


def test_verdict_fails_on_a_failed_error_slo() -> None:
    assert overall_verdict(results()) == "fail"


def test_warn_failures_do_not_fail_the_verdict() -> None:
    warn_only = [r for r in results() if r.severity == "warn" or r.passed]
    assert [r.passed for r in warn_only] == [True, False, False]
    assert overall_verdict(warn_only) == "pass"
    assert overall_verdict([]) == "pass"


# --- junit.xml -----------------------------------------------------------------------------


def read_junit(tmp_path: Path, summary: dict[str, Any]) -> ET.Element:
    path = tmp_path / "junit.xml"
    write_junit(path, summary)
    assert path.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.parse(path).getroot()


def test_junit_suite(tmp_path: Path, summary: dict[str, Any]) -> None:
    suite = read_junit(tmp_path, summary)
    assert suite.tag == "testsuite"
    assert suite.attrib["name"] == "meshchaos.payments-brownout"
    assert suite.attrib["tests"] == "4"
    assert suite.attrib["failures"] == "1"
    assert suite.attrib["errors"] == "0"
    assert suite.attrib["time"] == "65.500"
    properties = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert properties == {"seed": "42", "sha256": "ab12", "mode": "simulate", "verdict": "fail"}
    cases = suite.findall("testcase")
    assert [case.attrib["name"] for case in cases] == [
        "checkout p99 under fault",
        "error_rate < 0.5%",
        "mean | pipe",
        "amplifies",
    ]
    assert {case.attrib["classname"] for case in cases} == {"meshchaos.payments-brownout"}


def test_junit_failure_carries_observed_objective_and_scope(
    tmp_path: Path, summary: dict[str, Any]
) -> None:
    cases = read_junit(tmp_path, summary).findall("testcase")
    failure = cases[0].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "observed 312ms, objective p99 < 250ms, scope phase=fault"
    assert cases[1].find("failure") is None


def test_junit_warnings_are_output_not_failures(tmp_path: Path, summary: dict[str, Any]) -> None:
    cases = read_junit(tmp_path, summary).findall("testcase")
    for case in cases[2:]:
        assert case.find("failure") is None
        assert case.find("error") is None
    assert cases[2].findtext("system-out") == (
        "WARN: observed 41.3ms, objective mean < 40ms, scope all"
    )
    assert cases[3].findtext("system-out") == (
        "WARN: observed n/a (no edge measurement in scope), "
        "objective retry_amplification <= 1.2, scope all"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"interrupted": True}, "run interrupted; the report is partial"),
        ({"error": "topology failed to start"}, "harness error: topology failed to start"),
    ],
)
def test_junit_reports_a_run_that_did_not_finish(
    tmp_path: Path, extra: dict[str, Any], message: str
) -> None:
    suite = read_junit(tmp_path, make_summary([], **extra))
    assert (suite.attrib["tests"], suite.attrib["errors"], suite.attrib["failures"]) == (
        "1",
        "1",
        "0",
    )
    error = suite.find("testcase[@name='run']/error")
    assert error is not None
    assert error.attrib["message"] == message


# --- summary.md ----------------------------------------------------------------------------


def test_markdown(summary: dict[str, Any]) -> None:
    text = render_markdown(summary)
    assert text.startswith("### meshchaos `payments-brownout`: **FAIL**\n")
    assert "1 of 4 SLOs failed, 2 warnings. Mode simulate, seed 42." in text
    assert "| SLO | objective | scope | observed | result |" in text
    assert "| checkout p99 under fault | `p99 < 250ms` | phase=fault | 312ms | **FAIL** |" in text
    assert "| error_rate < 0.5% | `error_rate < 0.5%` | all | 0.05% | PASS |" in text
    assert "| mean \\| pipe | `mean < 40ms` | all | 41.3ms | **WARN** |" in text
    assert "**Load:** target 200/s, achieved 199.6/s, 7 dropped, generator lag p99 1.2ms." in text
    assert "- `payments-slow`: delay on `payments`, 20s to 35s" in text
    assert "- `inventory-down`: kill on `inventory/0`, from 25.25s to the end" in text


def test_markdown_table_rows_have_five_cells(summary: dict[str, Any]) -> None:
    rows = [line for line in render_markdown(summary).splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 4
    for row in rows:
        assert len(re.split(r"(?<!\\)\|", row)) == 7  # 5 cells between 6 unescaped pipes


def test_markdown_passing_run_says_pass_and_interrupted() -> None:
    passing = [r for r in results() if r.passed]
    text = render_markdown(make_summary(passing, interrupted=True))
    assert "**PASS**" in text
    assert "**FAIL**" not in text
    assert "**run interrupted; the report is partial**" in text


# --- terminal table ------------------------------------------------------------------------


def test_table_plain(summary: dict[str, Any]) -> None:
    text = render_verdict_table(summary, color=False)
    assert "\x1b" not in text
    lines = text.splitlines()
    assert lines[0].split() == ["SLO", "objective", "scope", "observed", "result"]
    failed = next(line for line in lines if line.startswith("checkout p99 under fault"))
    assert failed.split()[-2:] == ["312ms", "FAIL"]
    assert lines[-1] == "verdict: FAIL"
    # Every result starts in the same column.
    result_column = lines[0].index("result")
    assert [line[result_column:] for line in lines[2:6]] == ["FAIL", "PASS", "WARN", "WARN"]


def test_table_colored(summary: dict[str, Any]) -> None:
    text = render_verdict_table(summary, color=True)
    assert "\x1b[31mFAIL\x1b[0m" in text
    assert "\x1b[32mPASS\x1b[0m" in text
    assert "\x1b[33mWARN\x1b[0m" in text
    assert text.splitlines()[-1] == "verdict: \x1b[1m\x1b[31mFAIL\x1b[0m"
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert plain == render_verdict_table(summary, color=False)


def test_table_without_slos_and_with_an_error() -> None:
    text = render_verdict_table(make_summary([], error="boom"), color=False)
    assert text.splitlines()[-3:] == ["(no SLOs)", "harness error: boom", "verdict: PASS"]


# --- runs that ended early, relative objectives, explain(), the rich table -----------------


def steady_state_not_met() -> dict[str, Any]:
    steady = check_slo("steady", "p99 < 5ms", {"phase": "baseline"}, "error", ALL)
    late = dataclasses.replace(
        check_slo("late", "p99 < 1s", {"phase": "fault"}, "error", None),
        skipped=True,
        reason="not reached: steady state not met",
    )
    return make_summary(
        [steady, late],
        verdict="fail",
        steady_state={"met": False, "checked_at_s": 20.0, "failed": [steady.to_json()]},
    )


STEADY_LINE = "steady state not met at 20s ('steady' failed): no fault was injected"


def test_junit_of_a_run_whose_steady_state_was_not_met(tmp_path: Path) -> None:
    suite = read_junit(tmp_path, steady_state_not_met())
    assert (suite.attrib["tests"], suite.attrib["failures"], suite.attrib["skipped"]) == (
        "3",
        "2",
        "1",
    )
    late = suite.find("testcase[@name='late']")
    assert late is not None
    skipped = late.find("skipped")
    assert skipped is not None
    assert skipped.attrib["message"] == "not reached: steady state not met"
    run = suite.find("testcase[@name='run']/failure")
    assert run is not None
    assert run.attrib["message"] == STEADY_LINE


def test_outputs_say_the_steady_state_was_not_met() -> None:
    summary = steady_state_not_met()
    assert f"**{STEADY_LINE}**" in render_markdown(summary)
    assert "1 of 2 SLOs failed, 1 not reached." in render_markdown(summary)
    table = render_verdict_table(summary, color=False).splitlines()
    assert table[-2:] == [STEADY_LINE, "verdict: FAIL"]
    assert table[3].split()[-1] == "SKIP"


def test_an_aborted_run_names_its_guard_rail(tmp_path: Path) -> None:
    guard = check_slo("guard", "error_rate < 0.01%", {}, "error", ALL)
    summary = make_summary([guard], aborted={"at_s": 4.0, "slo": guard.to_json()})
    line = (
        "aborted at 4s by the guard rail 'guard': observed 0.05%, objective error_rate < 0.01%, "
        "scope all"
    )
    assert render_verdict_table(summary, color=False).splitlines()[-2] == line
    run = read_junit(tmp_path, summary).find("testcase[@name='run']/failure")
    assert run is not None
    assert run.attrib["message"] == line


def test_a_relative_objective_shows_its_resolved_threshold(tmp_path: Path) -> None:
    relative = check_slo(
        "x", "p99 <= baseline * 2", {"phase": "fault"}, "error", FAULT, baseline=ALL
    )
    summary = make_summary([relative])
    detail = "observed 312ms, objective p99 <= baseline * 2 (= 82.6ms), scope phase=fault"
    failure = read_junit(tmp_path, summary).find("testcase/failure")
    assert failure is not None
    assert failure.attrib["message"] == detail
    assert "`p99 <= baseline * 2 (= 82.6ms)`" in render_markdown(summary)


def test_explain_lists_every_slo_that_did_not_pass(summary: dict[str, Any]) -> None:
    assert explain(summary).splitlines() == [
        "meshchaos payments-brownout: FAIL, 1 of 4 SLOs failed, 2 warnings",
        "FAIL 'checkout p99 under fault': observed 312ms, objective p99 < 250ms, scope phase=fault",
        "WARN 'mean | pipe': observed 41.3ms, objective mean < 40ms, scope all",
        "WARN 'amplifies': observed n/a (no edge measurement in scope), "
        "objective retry_amplification <= 1.2, scope all",
    ]
    assert explain(steady_state_not_met()).splitlines()[1] == STEADY_LINE


def test_rich_table_holds_the_same_rows(summary: dict[str, Any]) -> None:
    console = Console(width=160, record=True, file=io.StringIO(), color_system=None)
    console.print(render_rich_verdict(summary))
    text = console.export_text()
    assert "meshchaos payments-brownout" in text
    assert "1 of 4 SLOs failed, 2 warnings" in text
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines()]
    assert ["checkout p99 under fault", "p99 < 250ms", "phase=fault", "312ms", "FAIL"] in rows
    assert [
        "amplifies",
        "retry_amplification <= 1.2",
        "all",
        "n/a (no edge measurement in scope)",
        "WARN",
    ] in rows
    assert text.rstrip().splitlines()[-1] == "verdict: FAIL"
