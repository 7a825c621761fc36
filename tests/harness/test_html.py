"""report.html: self-contained, escaped, and saying first what a newcomer asks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.html import Plot, render_html

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# The smallest valid PNG header of a 1500 x 600 image: render_html reads only the IHDR height.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (1500).to_bytes(4, "big") + (600).to_bytes(4, "big")


def chaos_summary() -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((FIXTURES / "report-chaos" / "summary.json").read_text())
    return summary


def page(summary: dict[str, Any], text: str | None = "spec: {}\n") -> str:
    plots = [Plot("Latency over time", "how to read it", "latency.png", PNG),
             Plot("Topology", "boxes", "topology.png", PNG)]  # fmt: skip
    return render_html(summary, plots, experiment_text=text)


def test_the_page_fetches_nothing() -> None:
    html = page(chaos_summary())
    assert "<script" not in html
    assert "<link" not in html
    assert "@import" not in html
    assert "url(" not in html
    for reference in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert reference.startswith(("data:image/png;base64,", "#")), reference
    assert html.count('<img src="data:image/png;base64,') == 2
    assert 'height="600"' in html  # the page reserves each plot's real height


def test_glance_says_what_was_injected_what_it_did_and_whether_slos_held() -> None:
    html = page(chaos_summary())
    glance = html[html.index('id="glance"') : html.index('id="slos"')]
    assert "<b>payments-slow</b>, delay on <code>payments</code> from 10s to 20s" in glance
    assert "p99 latency" in glance
    assert "under fault" in glance
    assert "\u00d7" in glance  # the fault / baseline p99 ratio
    assert '<span class="broken">1 failed</span>, 1 held' in glance
    assert "fault p99" in glance


def test_user_text_is_escaped_everywhere() -> None:
    summary = chaos_summary()
    summary["experiment"]["name"] = "<b>x</b>"
    summary["faults"][0]["name"] = '<script>alert("f")</script>'
    summary["slos"][0]["name"] = "a & b"
    html = page(summary, text="name: <img src=x>\n")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;f&quot;)&lt;/script&gt;" in html
    assert "<title>meshchaos · &lt;b&gt;x&lt;/b&gt; · FAIL</title>" in html
    assert "a &amp; b" in html
    assert "<img src=x>" not in html


def test_a_run_that_went_wrong_says_so_at_the_top() -> None:
    summary = chaos_summary()
    summary["error"] = "TopologyError: replica frontend/0 did not become ready"
    summary["interrupted"] = True
    summary["crashes"] = ["payments/1 exited with status 1"]
    html = page(summary)
    top = html[: html.index('id="glance"')]
    assert "Harness error: TopologyError" in top
    assert "interrupted" in top
    assert "payments/1 exited with status 1" in top
    summary["faults"] = []  # the run failed before its fault schedule started
    assert "the run stopped before its fault schedule started" in page(summary)


def test_timeline_draws_phases_and_one_bar_per_fault() -> None:
    html = page(chaos_summary())
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert svg.count('fill="#d62728"') == 2
    for phase in ("baseline", "fault", "recovery"):
        assert f">{phase}</text>" in svg
    assert ">30s</text>" in svg  # the axis reaches the end of measurement


def test_no_faults_and_no_slos_read_as_such() -> None:
    summary = chaos_summary()
    summary["faults"], summary["slos"] = [], []
    html = page(summary, text=None)
    assert "<b>Injected:</b> nothing; this run is a baseline." in html
    assert "No SLOs were set." in html
    assert "experiment.yaml is missing" in html


def test_print_rules_hide_navigation_and_keep_figures_whole() -> None:
    html = page(chaos_summary())
    print_rules = html[html.index("@media print") :]
    assert "nav { display: none; }" in print_rules
    assert "break-inside: avoid" in print_rules
