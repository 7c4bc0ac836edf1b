"""The report in headless Chromium at 1280 px: every number of every table of the Markdown report
is in the HTML's DOM (the two carry the same tables), no section overflows horizontally, and
one screenshot per section is written for a person to look at (the path is printed)."""

import json
import re
import shutil
import subprocess

import pytest

from advisor_repro.cli import main

WIDTH = 1280
SECTIONS = ("claims", "verify", "data", "training", "memory", "metrics", "judge", "audits",
            "environment", "deviations")  # fmt: skip
# after load, record per section whether its content is wider than its box (test copy only:
# the report itself holds no script)
MEASURE = """<script>addEventListener('load', () => {
  const out = {};
  for (const s of document.querySelectorAll('section')) {
    out[s.id] = {scroll: s.scrollWidth, client: s.clientWidth};
  }
  out.page = {scroll: document.documentElement.scrollWidth, client: innerWidth};
  document.body.setAttribute('data-widths', JSON.stringify(out));
});</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browse(tmp_path, name: str, *args: str) -> subprocess.CompletedProcess:
    flags = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={tmp_path / ('profile-' + name)}"]  # fmt: skip
    return subprocess.run([*flags, *args], capture_output=True, text=True, timeout=180,
                          check=True)  # fmt: skip


def table_numbers(md: str) -> set[str]:
    """Every number printed in a cell of a Markdown table (outside the collapsed raw values)."""
    md = re.sub(r"<details>.*?</details>", "", md, flags=re.S)
    cells = [c for line in md.splitlines() if line.startswith("| ") for c in line.split(" | ")]
    return {n for c in cells for n in re.findall(r"[-+]?\d[\d,]*(?:\.\d+)?%?", c)}


@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (apt-get install -y "
                    "chromium) to render the HTML report headless")  # fmt: skip
def test_report_at_1280px(paper_run, tmp_path, capsys):
    from matplotlib.image import imread

    assert main(["verify", "--profile", "paper", "--run-dir", str(paper_run)]) == 0
    assert main(["report", "--profile", "paper", "--run-dir", str(paper_run)]) == 0
    html = (paper_run / "report/report.html").read_text()
    md = (paper_run / "report/report.md").read_text()
    measured = tmp_path / "measured.html"
    measured.write_text(html.replace("</body>", MEASURE + "</body>"))
    dom = browse(tmp_path, "dom", f"--window-size={WIDTH},1000", "--virtual-time-budget=5000",
                 "--dump-dom", measured.as_uri()).stdout  # fmt: skip
    text = re.sub(r"<[^>]+>", " ", dom).replace("&amp;", "&")
    missing = sorted(n for n in table_numbers(md) if n not in text)
    assert missing == [], f"numbers of the Markdown tables not in the HTML DOM: {missing[:20]}"
    assert "-0.40 [-0.62, -0.18]" in text and "23/50 (46%)" in text
    widths = json.loads(re.search(r"data-widths=\"([^\"]+)\"", dom)[1].replace("&quot;", '"'))
    assert set(SECTIONS) <= set(widths)
    for sid in SECTIONS:
        w = widths[sid]
        assert w["scroll"] <= w["client"] + 1, f"section {sid} overflows: {w}"
    assert widths["page"]["scroll"] <= WIDTH, widths["page"]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    for sid in SECTIONS:  # one page per section: the others hidden
        page = tmp_path / f"only-{sid}.html"
        page.write_text(html.replace("</head>", f"<style>section:not(#{sid}){{display:none}}"
                                                "header{display:none}</style></head>"))
        shot = shots / f"{sid}.png"
        browse(tmp_path, sid, f"--window-size={WIDTH},1600", f"--screenshot={shot}",
               page.as_uri())  # fmt: skip
        pixels = imread(shot)
        assert pixels.shape[:2] == (1600, WIDTH)
        assert pixels[..., :3].std() > 0.02, f"{sid}: blank screenshot"
    with capsys.disabled():
        print(f"\nreport screenshots, one per section: {shots}")
