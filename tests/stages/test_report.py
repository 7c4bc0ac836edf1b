"""`repro report`: the self-contained HTML and its Markdown twin, rendered in headless Chromium."""

import base64
import re
import shutil
import subprocess

import pytest

from advisor_repro.cli import main
from advisor_repro.files import read_json, write_json

SECTIONS = ("claims", "verify", "data", "training", "memory", "metrics", "judge", "audits",
            "environment", "deviations")  # fmt: skip
SECRET = "sk-ant-test-0123456789abcdef"


def pngs(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def test_report_of_a_paper_shaped_run(paper_run, monkeypatch, capsys):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    judge = read_json(paper_run / "judge/summary.json")
    judge["judge"]["note"] = f"called with {SECRET}"  # a secret that leaked into a stage output
    write_json(paper_run / "judge/summary.json", judge)
    assert main(["verify", "--profile", "paper", "--run-dir", str(paper_run)]) == 15
    assert main(["report", "--profile", "paper", "--run-dir", str(paper_run)]) == 0
    html = (paper_run / "report/report.html").read_text()
    md = (paper_run / "report/report.md").read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in html
    assert html.index('id="verify"') < html.index('id="training"')  # the verify table on top
    assert 'class="verdict PARTIAL">PARTIAL: ' in html and "train.total_steps" in html
    images = pngs(html)
    assert len(images) == 5 and all(p.startswith(b"\x89PNG\r\n\x1a\n") for p in images)
    # self-contained: nothing is fetched (no external src/href, no script)
    assert not re.search(r'(src|href)="(?!data:|#)', html) and "<script" not in html
    assert "not run: position-swap pass" in html  # the paper made one pass
    assert "segment2-recipe" in md and "Deviations ledger" in md
    for name in ("loss", "memory", "metrics", "judge_scores", "judge_preferences"):
        assert (
            f"](figures/{name}.png)" in md and (paper_run / f"report/figures/{name}.png").is_file()
        )
    assert "torch" in html and "config_hash" in html  # environment and pinned versions
    assert SECRET not in html and SECRET not in md and "[redacted]" in html


def test_report_of_a_partial_run_says_not_run(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["data", "--run-dir", run]) == 0
    assert main(["report", "--run-dir", run]) == 0
    # a cell's key kept on one line is wrapped in a span: read the text without it
    html = (tmp_path / "run/report/report.html").read_text()
    html = re.sub(r'<span class="w">|</span>', "", html)
    for what in ("verify", "peak memory", "metric distributions", "judge", "audit-data",
                 "train-1"):  # fmt: skip
        assert f"not run: {what}" in html, what
    # only the paper's own released curves can be drawn: the loss figure holds nothing else
    assert len(pngs(html)) == 1 and 'class="verdict none"' in html
    assert "not run: train-1, train-2, control" in html
    assert "Deviations ledger" in html and "eval-draw" in html
    done = read_json(tmp_path / "run/report/done.json")
    assert done["figures"]["verdict"] == "NOT VERIFIED" and done["figures"]["figures"] == 1


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (apt-get install -y "
                    "chromium) to render the HTML report headless")  # fmt: skip
def test_report_renders_in_headless_chromium(paper_run, tmp_path, capsys):
    from matplotlib.image import imread

    assert main(["verify", "--profile", "paper", "--run-dir", str(paper_run)]) == 15
    assert main(["report", "--profile", "paper", "--run-dir", str(paper_run)]) == 0
    page = (paper_run / "report/report.html").resolve().as_uri()
    flags = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--hide-scrollbars"]  # fmt: skip
    shot = tmp_path / "shot.png"
    screenshot = [f"--user-data-dir={tmp_path / 'p1'}", "--window-size=1200,2000",
                  f"--screenshot={shot}", page]  # fmt: skip
    subprocess.run([*flags, *screenshot], capture_output=True, timeout=120, check=True)
    pixels = imread(shot)
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels[..., :3].std() > 0.05  # not blank: text, the verify table's colours
    dump = [f"--user-data-dir={tmp_path / 'p2'}", "--dump-dom", page]
    dom = subprocess.run([*flags, *dump], capture_output=True, text=True, timeout=120, check=True)
    dom = dom.stdout
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in dom
    assert dom.count("<img ") == 5 and "PARTIAL: " in dom
