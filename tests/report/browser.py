"""Headless Chromium over a report.html: lay it out at a width, measure it in the page, take one
screenshot of the whole page and cut it into one picture per section.

The measuring script is injected into a copy of the page (the report itself holds no script);
it writes its findings as JSON into an attribute that --dump-dom returns:
  - split: table cells (and the ledger's summary lines and fields) holding a word (a run of
    non-space characters) laid out on more than one line, or wider than its cell: a Range
    over the word gives one client rect per line box;
  - wide: elements whose right edge passes the viewport;
  - images: each figure's natural and displayed width (CSS px);
  - sections: each section's top and height, for cutting the screenshot.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

MEASURE = r"""<script>addEventListener('load', () => {
  const out = {split: [], wide: [], images: [], sections: {}, headline: ''};
  if (location.hash === '#open') document.querySelectorAll('details').forEach(d => d.open = true);
  const vw = document.documentElement.clientWidth;
  for (const cell of document.querySelectorAll('td, th, summary, dt, dd')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.parentElement.getClientRects().length) continue;  // inside a closed <details>
      for (const m of node.data.matchAll(/\S+/g)) {
        const r = document.createRange();
        r.setStart(node, m.index); r.setEnd(node, m.index + m[0].length);
        const tops = new Set([...r.getClientRects()].filter(q => q.width > 0)
                               .map(q => Math.round(q.top)));
        const w = r.getBoundingClientRect().width;
        if (tops.size > 1 || w > cell.clientWidth + 1)
          out.split.push({word: m[0], lines: tops.size, width: Math.round(w),
                          cell: cell.clientWidth,
                          row: cell.parentElement.textContent.slice(0, 80)});
      }
    }
  }
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > vw + 1)
      out.wide.push({tag: el.tagName, cls: el.className, right: Math.round(r.right),
                     text: (el.textContent || '').slice(0, 60)});
  }
  for (const img of document.images)
    out.images.push({alt: img.alt.slice(0, 40), natural: img.naturalWidth,
                     shown: img.clientWidth});  // CSS px, border excluded
  for (const s of document.querySelectorAll('section')) {
    const r = s.getBoundingClientRect();
    out.sections[s.id] = {top: Math.round(r.top + scrollY), height: Math.round(r.height)};
  }
  out.height = document.documentElement.scrollHeight;
  out.scroll = document.documentElement.scrollWidth;
  out.viewport = vw;
  const v = document.querySelector('.verdict');
  out.headline = v ? v.textContent : '';
  document.body.setAttribute('data-measured', JSON.stringify(out));
});</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browse(profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--force-device-scale-factor=1",
             f"--user-data-dir={profile}"]  # fmt: skip
    return subprocess.run([*flags, *args], capture_output=True, text=True, timeout=180,
                          check=True)  # fmt: skip


def measure(html: Path, width: int, work: Path, opened: bool = False) -> dict:
    """The findings at `width`; `opened`: with every <details> open (the ledger's entries,
    the raw values, the folded skips)."""
    page = work / f"measured-{width}.html"
    page.write_text(html.read_text().replace("</body>", MEASURE + "</body>"))
    dom = browse(work / "profile", f"--window-size={width},900", "--virtual-time-budget=5000",
                 "--dump-dom", page.as_uri() + ("#open" if opened else "")).stdout  # fmt: skip
    found = re.search(r'data-measured="([^"]+)"', dom)
    assert found, "the measuring script left no result"
    text = found[1].replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    return json.loads(text.replace("&amp;", "&"))


def screenshots(html: Path, width: int, measured: dict, out: Path, work: Path) -> list[Path]:
    """One full-page screenshot at `width`, cut into one PNG per section (out/<id>-<width>.png)."""
    from PIL import Image

    height = min(int(measured["height"]) + 10, 30000)
    full = work / f"full-{width}.png"
    browse(work / "profile", f"--window-size={width},{height}", f"--screenshot={full}",
           html.as_uri())  # fmt: skip
    shots = []
    with Image.open(full) as image:
        for sid, box in measured["sections"].items():
            top, bottom = box["top"], min(box["top"] + box["height"], image.height)
            if bottom <= top:
                continue
            shot = out / f"{sid}-{width}.png"
            image.crop((0, top, width, bottom)).save(shot)
            shots.append(shot)
        head = measured["sections"] and min(b["top"] for b in measured["sections"].values())
        if head:
            image.crop((0, 0, width, head)).save(out / f"headline-{width}.png")
            shots.append(out / f"headline-{width}.png")
    return shots
