"""The report folder: rendered from stored fixtures, re-rendered identically, bad input refused."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from runfolders import synthetic_run

from harness.report import ReportError, load_run, report_command

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RENDERED = ("junit.xml", "summary.md", "latency.png", "throughput.png", "spectrum.png",
            "report.html")  # fmt: skip


def copy_fixture(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder)
    return folder


def embedded_images(page: str) -> list[str]:
    return re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)


def test_a_report_from_before_topology_and_interval_errors_still_renders(tmp_path: Path) -> None:
    folder = copy_fixture("report-foundation", tmp_path)
    assert report_command(folder) == 0
    for name in RENDERED:
        assert (folder / name).is_file(), name
    assert not (folder / "topology.png").exists()
    page = (folder / "report.html").read_text()
    assert len(embedded_images(page)) == 3
    assert "predates stored topologies" in page
    assert "<title>meshchaos · quickstart · PASS</title>" in page
    run = load_run(folder)
    assert not run.errors_known
    assert run.latency.scope("phase=fault", 6.0).requests == 300


def test_the_chaos_fixture_renders_topology_and_edge_plots(tmp_path: Path) -> None:
    folder = copy_fixture("report-chaos", tmp_path)
    assert report_command(folder) == 0
    page = (folder / "report.html").read_text()
    assert len(embedded_images(page)) == 5
    for name in ("topology.png", "edges.png"):
        assert (folder / name).is_file(), name
    assert '<span class="badge fail">FAIL</span>' in page
    assert "payments-1-fails" in page


def test_interval_errors_come_back_from_the_summary(tmp_path: Path) -> None:
    run = load_run(FIXTURES / "report-chaos")
    assert run.errors_known
    stored = {index: count for index, count in run.summary["intervals"]["errors"]["all"]}
    loaded = {i.index: i.errors for i in run.latency.iter_intervals("all") if i.errors}
    assert loaded == stored
    assert sum(stored.values()) == run.summary["scopes"]["all"]["errors"] > 0


def test_rerendering_a_fresh_report_writes_the_same_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    synthetic_run(folder, seed=5)
    written = {name: (folder / name).read_bytes() for name in (*RENDERED, "topology.png")}
    assert report_command(folder) == 0
    for name, data in written.items():
        assert (folder / name).read_bytes() == data, name


def test_a_ten_minute_report_stays_small(tmp_path: Path) -> None:
    # 600 one-second intervals at 100 req/s with five scopes: the plots, page and log must
    # stay far under the 5 MB a report folder may take (DESIGN.md 4.3, issue 8).
    folder = tmp_path / "long"
    synthetic_run(folder, seed=2, duration_s=600)
    sizes = {path.name: path.stat().st_size for path in folder.iterdir()}
    assert max(size for name, size in sizes.items() if name.endswith(".png")) < 120_000
    assert sum(sizes.values()) < 5_000_000, sizes


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda folder: shutil.rmtree(folder), "not a report folder"),
        (lambda folder: (folder / "summary.json").write_text("{"), "not valid JSON"),
        (lambda folder: (folder / "summary.json").write_text('{"schema": "x/v9"}'), "schema is"),
        (lambda folder: (folder / "summary.json").write_text(
            '{"schema": "meshchaos.summary/v1"}'), "missing experiment"),
        (lambda folder: (folder / "latency.hlog").unlink(), "latency.hlog"),
        (lambda folder: (folder / "latency.hlog").write_text("garbage\n"), "latency.hlog:1:"),
    ],
)  # fmt: skip
def test_bad_report_folders_are_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], break_it: object, message: str
) -> None:
    folder = copy_fixture("report-foundation", tmp_path)
    break_it(folder)  # type: ignore[operator]
    with pytest.raises(ReportError, match=re.escape(message)):
        load_run(folder)
    assert report_command(folder) == 2
    assert message in capsys.readouterr().err


def test_summary_contract_keys_are_kept(tmp_path: Path) -> None:
    summary = synthetic_run(tmp_path / "run", seed=1, render=False)
    for key in ("schema", "experiment", "mode", "started_at", "finished_at", "versions", "phases",
                "faults", "scopes", "load", "slos", "verdict"):  # fmt: skip
        assert key in summary, key
    assert set(summary["experiment"]) >= {"name", "seed", "sha256"}
    assert summary["topology"]["services"][1] == {
        "name": "checkout", "replicas": 3, "calls": ["payments", "inventory"],
    }  # fmt: skip
    assert json.loads(json.dumps(summary)) == summary
