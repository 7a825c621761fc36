"""report.html opened in headless Chromium: it renders, with its title and every plot visible.

Chromium runs without network use (no background networking, no component updates, no QUIC) and
with a fresh profile. A copy of the page gets a probe script, run once the page has loaded,
that writes every image's decoded size and on-screen box into the DOM, which ``--dump-dom``
prints. The product page itself has no script.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from harness.report import report_command

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("chromium") is None,
        reason="chromium is not installed (Debian package `chromium`; .ci/run installs it)",
    ),
]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "report-chaos"
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map((img) => {
    const box = img.getBoundingClientRect();
    return {alt: img.alt, complete: img.complete, natural: img.naturalWidth,
            width: box.width, height: box.height};
  });
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({title: document.title, images});
  document.body.appendChild(out);
});
</script>
</body>"""


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars", *args],
        capture_output=True, text=True, timeout=90, check=True,
    )  # fmt: skip


@pytest.fixture
def report(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(FIXTURE, folder)
    assert report_command(folder) == 0
    return folder / "report.html"


def test_report_renders_with_its_title_and_every_plot_visible(report: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", PROBE, 1))
    dom = chromium(tmp_path / "profile-dom", "--virtual-time-budget=10000", "--dump-dom",
                   probe.as_uri()).stdout  # fmt: skip
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.DOTALL)
    assert found, dom[-2000:]
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["title"] == "meshchaos · checkout-brownout · FAIL"
    alts = [image["alt"] for image in result["images"]]
    assert alts == ["Latency over time", "Throughput and errors", "Percentile spectrum per phase",
                    "Errors per edge", "Topology"]  # fmt: skip
    for image in result["images"]:
        assert image["complete"], image
        assert image["natural"] == 1500, image  # decoded at full resolution
        assert image["width"] > 600, image  # laid out across the page
        assert image["height"] > 100, image


def test_screenshot_shows_the_header_and_a_plot(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    chromium(tmp_path / "profile-shot", "--window-size=1280,2400", f"--screenshot={shot}",
             report.as_uri())  # fmt: skip
    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        rgb = image.convert("RGB")
        # The FAIL badge (#cf222e) is drawn next to the title at the top of the page ...
        top = rgb.crop((0, 0, 1280, 200))
        assert any(colour == (0xCF, 0x22, 0x2E) for _, colour in top.getcolors(1 << 16) or [])
        # ... and the latency plot further down has its shaded fault window and its lines.
        colours = rgb.crop((0, 900, 1280, 2400)).getcolors(1 << 16) or []
        assert len(colours) > 50
