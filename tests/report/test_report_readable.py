"""The report read as an artifact reviewer reads it, in headless Chromium at 1280 and 800 px:
the smoke replay, a rehearsal-shaped run and the import of the author's released files.

Each must state its headline (MECHANISM ONLY for smoke and rehearsal, PARTIAL for the import),
lay out with no table cell whose text is broken inside a word and no element wider than the
page (also with every collapsed entry opened, at 800 px), and show every figure at 150 dpi or
more (the PNG's own pHYs, and its pixels against the CSS pixels it is drawn on, at 96 per
inch). One screenshot per section and width is written
under the test's tmp folder; the path is printed for a person to look at.
"""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path

import pytest

from advisor_repro.cli import main
from advisor_repro.files import read_json

from .browser import chromium, measure, screenshots
from .conftest import RELEASED, rehearsal_shaped

WIDTHS = (1280, 800)
SECTIONS = ("claims", "verify", "data", "training", "memory", "metrics", "judge", "audits",
            "environment", "deviations")  # fmt: skip
MIN_DPI = 150

pytestmark = pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium "
                                "(apt-get install -y chromium) to render the report headless")


def png_dpi(png: bytes) -> float | None:
    """Horizontal resolution from the PNG's pHYs chunk (pixels per metre), in dots per inch."""
    at = png.find(b"pHYs")
    if at < 0:
        return None
    ppm_x, _, unit = struct.unpack(">IIB", png[at + 4:at + 13])
    return ppm_x * 0.0254 if unit == 1 else None


def figures(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def check_layout(run: Path, tmp: Path, state: str) -> list[Path]:
    html_path = run / "report/report.html"
    html = html_path.read_text()
    pngs = figures(html)
    assert pngs, "no figure in the report"
    for png in pngs:
        dpi = png_dpi(png)
        assert dpi is not None and dpi >= MIN_DPI - 0.5, f"figure saved at {dpi} dpi"
    shots: list[Path] = []
    for width in WIDTHS:
        m = measure(html_path, width, tmp)
        assert m["headline"].startswith(state), m["headline"]
        assert m["split"] == [], f"{width}px: words broken or wider than their cell: " \
                                 f"{m['split'][:5]}"
        assert m["wide"] == [] and m["scroll"] <= width, f"{width}px: {m['wide'][:5]}"
        assert set(SECTIONS) <= set(m["sections"])
        assert len(m["images"]) == len(pngs)
        for img in m["images"]:  # drawn on no more CSS px than its print size at 150 dpi
            assert img["natural"] * 96 / img["shown"] >= MIN_DPI - 0.5, img
        shots += screenshots(html_path, width, m, tmp, tmp)
    opened = measure(html_path, min(WIDTHS), tmp, opened=True)  # every <details> open
    assert opened["split"] == [] and opened["wide"] == [], (opened["split"][:5],
                                                            opened["wide"][:5])
    return shots


def assert_plain_markdown(run: Path) -> None:
    """report.md holds no HTML: no tag outside its code blocks (an escaped "\\<" is text)."""
    md = re.sub(r"```.*?```", "", (run / "report/report.md").read_text(), flags=re.S)
    tags = re.findall(r"(?<!\\)<[/A-Za-z!][^>]*>", md)
    assert tags == [], tags[:5]


def say_where(capsys, shots: list[Path]) -> None:
    with capsys.disabled():
        print(f"\nreport screenshots ({len(shots)}): {shots[0].parent}")


@pytest.mark.slow  # the shrunk smoke replay, once per session
def test_the_smoke_report_says_mechanism_only(smoke_replay, tmp_path, capsys):
    record = read_json(smoke_replay / "verify/verify.json")
    assert record["headline"]["state"] == "MECHANISM ONLY" and record["counts"]["FAIL"] == 0
    md = (smoke_replay / "report/report.md").read_text()
    assert "**MECHANISM ONLY: this profile tests the code path" in md
    assert_plain_markdown(smoke_replay)
    assert "## What to run next" not in md  # a table under a sentence, not a heading
    assert "repro all --profile paper" in md  # the command that would test the recipe claim
    shots = check_layout(smoke_replay, tmp_path, "MECHANISM ONLY")
    say_where(capsys, shots)


@pytest.mark.slow
def test_a_rehearsal_shaped_run_says_mechanism_only_and_names_its_gpu(smoke_replay, tmp_path,
                                                                      capsys):
    run = rehearsal_shaped(smoke_replay, tmp_path / "rehearsal")
    assert main(["verify", "--run-dir", str(run)]) == 0  # mechanism only: the code path passed
    out = capsys.readouterr().out
    assert "MECHANISM ONLY" in out and "claim 1. the two-GPU recipe: not tested" in out
    assert main(["report", "--run-dir", str(run)]) == 0
    html = (run / "report/report.html").read_text()
    assert "<td>NVIDIA H100 80GB HBM3, fp16</td>" in html  # the summary card: what ran it
    assert "fp16, as trained (train.precision = auto)" in html  # Table 3: the dtype used
    assert_plain_markdown(run)
    assert "training ran in fp16" in html  # preflight proposed bf16: said once, with the fact
    shots = check_layout(run, tmp_path, "MECHANISM ONLY")
    say_where(capsys, shots)


def test_the_import_of_the_released_files_says_partial(tmp_path, capsys):
    run = tmp_path / "release"
    assert main(["import-release", str(RELEASED), "--run-dir", str(run)]) == 0
    assert not (tmp_path / "latest").exists()  # --run-dir X writes nothing beside X
    assert main(["verify", "--run-dir", str(run)]) == 15  # PARTIAL (README, "Exit codes")
    out = capsys.readouterr().out
    from advisor_repro.expected import load_expected

    required = sum(c.required for c in load_expected("paper"))  # the paper's checks, all of them
    assert f"PARTIAL: 28 of {required} of the paper's required checks ran, all passed" in out
    assert "claim 2. the caution (closer to references, worse advisor): partly tested" in out
    assert main(["report", "--run-dir", str(run)]) == 0
    html = (run / "report/report.html").read_text()
    assert "not tested by this profile" not in html  # an import is no profile's limit
    assert_plain_markdown(run)
    assert "summary.json:" not in re.sub(r"<pre>.*?</pre>", "", html, flags=re.S).replace(
        "metrics/summary.json:origin", "")  # ranges in words; file keys only in the raw block
    shots = check_layout(run, tmp_path, "PARTIAL")
    say_where(capsys, shots)
    assert main(["verify", "--run-dir", str(run), "--strict"]) == 11  # strict: a skip fails
    out = capsys.readouterr().out
    assert f"FAIL (strict): 0 failed, {required - 28} required checks skipped" in out
