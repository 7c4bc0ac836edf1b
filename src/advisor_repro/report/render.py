"""The report's two renderings of one list of sections: a self-contained HTML file (inline CSS,
figures as base64 PNG, no script, nothing fetched) and Markdown (figures as PNG files beside it).

A section is an id, a title and blocks: Text, Table, Figure, NotRun, Pre. Secrets never reach
either file: `redact` replaces the value of every environment variable whose name looks like a
credential (..._KEY, ..._TOKEN, ...) wherever it occurs.
"""

from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass, field
from typing import Any

SECRET_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")


@dataclass
class Text:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    classes: list[str] = field(default_factory=list)  # one CSS class per row (HTML only)
    kind: str = ""  # the table's CSS class: "paper" = paper | this run | range | verdict


@dataclass
class Figure:
    name: str  # file name stem for the Markdown copy
    png: bytes
    caption: str
    dpi: int = 150  # the PNG's resolution: the HTML shows it at its print size or smaller


@dataclass
class NotRun:
    what: str  # e.g. "loss curve: train-1, train-2 not run"


@dataclass
class Pre:
    summary: str
    text: str


@dataclass
class Folded:
    """One collapsible entry: a summary line, then named fields (HTML <details>; Markdown a
    bold line and a list, since report.md holds no HTML)."""

    summary: str
    fields: list[tuple[str, str]]


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Any]


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em 1.5em;
color:#222;background:#fff}
h1{font-size:1.4em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-top:.6em}
h3{font-size:1.05em;margin:1em 0 .2em}
nav a{margin-right:1em;white-space:nowrap}
table{border-collapse:collapse;margin:.6em 0;font-size:12px;width:100%}
td,th{border:1px solid #ccc;padding:3px 5px;text-align:left;vertical-align:top;
overflow-wrap:normal;word-break:normal;hyphens:manual}
th{background:#f2f2f2}
table.paper td:first-child{min-width:9em}
tr.PASS td:first-child{background:#d9f2d9}tr.FAIL td:first-child{background:#f7c6c6}
tr.SKIP td:first-child{background:#eee}tr.PARTIAL td:first-child{background:#fbeec1}
tr.MECHANISM td:first-child{background:#dde7f5}
table.verify td:nth-child(2){font-family:ui-monospace,monospace;font-size:11px}
.verdict{font-size:1.15em;padding:.5em 1em;border-radius:4px;margin:.4em 0;font-weight:600}
.verdict.PASS{background:#d9f2d9}.verdict.FAIL{background:#f7c6c6}.verdict.none{background:#eee}
.verdict.PARTIAL{background:#fbeec1}.verdict.MECHANISM{background:#dde7f5}
.notrun{border:2px dashed #bbb;color:#777;padding:1.2em;margin:.6em 0;text-align:center}
figure{margin:.6em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:12px;color:#555}pre{background:#f7f7f7;padding:.6em;overflow-x:auto;
font-size:12px;white-space:pre-wrap;overflow-wrap:normal}
details{margin:.3em 0}.w{white-space:nowrap}summary{cursor:pointer}
details.entry{border:1px solid #ddd;border-radius:3px;padding:.2em .6em}
dl{margin:.3em 0 .5em;display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}
dt{font-weight:600}dd{margin:0}
"""


def secret_values(extra_names: tuple[str, ...] = ()) -> list[str]:
    """Values of environment variables that hold credentials (never shown, never written)."""
    names = [n for n in os.environ if any(w in n.upper() for w in SECRET_WORDS)]
    values = {os.environ[n] for n in (*names, *extra_names) if n and n in os.environ}
    return sorted((v for v in values if len(v) >= 8), key=len, reverse=True)


# An absolute POSIX path of two or more parts, not inside a word, a URL or a tag; data: URIs
# (the figures' base64, which holds "/") are matched first and kept as they are.
_PATH = re.compile(r"(data:image/png;base64,[A-Za-z0-9+/=]+)"
                   r"|(?<![\w:/.<>~&;-])/(?:[\w.@+=,()-]+/)+[\w.@+=,()-]*")


def drop_paths(text: str) -> str:
    """Every absolute path of the machine reduced to its last part ("…/name"), so that a report
    can be shared without telling where it was made."""
    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return m.group(1)
        last = m.group(0).rstrip("/").rsplit("/", 1)[-1]
        return f"…/{last}" if last else "…"

    return _PATH.sub(one, text)


def redact(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, "[redacted]")
    return text


# ---- HTML -----------------------------------------------------------------------------------
def _e(text: Any) -> str:
    return html.escape(drop_paths(str(text)))


_JOINED = re.compile(r"\S*(?:[\w.)-][-\u2013]|[-/\u2013](?=[A-Za-z]))\S*")


def _cell(text: Any) -> str:
    """A table cell: a word where a browser may break (a hyphen inside it, "--run-dir",
    "10.62-10.80", "fine-tuned"; a slash before a letter, a file path) kept on one line; a
    leading minus or a slash before a digit ("-0.40", "23/50") never breaks. A newline is a
    line break."""
    escaped = _JOINED.sub(lambda m: f'<span class="w">{m.group(0)}</span>', _e(text))
    return escaped.replace("\n", "<br>")


def png_width(png: bytes) -> int:
    return int.from_bytes(png[16:20], "big")  # IHDR: width, then height


def _html_block(block: Any) -> str:
    if isinstance(block, Text):
        return f"<p>{_e(block.text)}</p>"
    if isinstance(block, NotRun):
        return f'<div class="notrun">not run: {_e(block.what)}</div>'
    if isinstance(block, Pre):
        return (
            f"<details><summary>{_cell(block.summary)}</summary><pre>{_e(block.text)}</pre>"
            "</details>"
        )
    if isinstance(block, Folded):
        fields = "".join(f"<dt>{_cell(k)}</dt><dd>{_cell(v)}</dd>" for k, v in block.fields)
        return (f'<details class="entry"><summary>{_cell(block.summary)}</summary>'
                f"<dl>{fields}</dl></details>")  # fmt: skip
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        # shown at its print size (CSS px at 96 per inch): never fewer pixels than block.dpi
        width = round(png_width(block.png) * 96 / block.dpi)
        return (
            f'<figure><img alt="{_e(block.caption)}" width="{width}" '
            f'src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(block.caption)}</figcaption></figure>"
        )
    if isinstance(block, Table):
        head = "".join(f"<th>{_cell(h)}</th>" for h in block.header)
        rows = []
        for i, row in enumerate(block.rows):
            cls = block.classes[i] if i < len(block.classes) else ""
            cells = "".join(f"<td>{_cell(c)}</td>" for c in row)
            rows.append(f'<tr class="{_e(cls)}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
        kind = f' class="{_e(block.kind)}"' if block.kind else ""
        body = "".join(rows)
        return f"<table{kind}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_html(title: str, verdict: tuple[str, str], sections: list[Section]) -> str:
    cls, text = verdict
    nav = " ".join(f'<a href="#{s.id}">{_e(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.id}"><h2>{_e(s.title)}</h2>'
        + "".join(_html_block(b) for b in s.blocks)
        + "</section>"
        for s in sections
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{_e(title)}</h1><div class="verdict {_e(cls)}">{_e(text)}</div>'
        f"<nav>{nav}</nav></header>{body}</body></html>\n"
    )


# ---- Markdown -------------------------------------------------------------------------------
def _md_cell(text: Any) -> str:
    # "<" escaped: a cell such as the EOS token "</s>" must not read as an HTML tag
    return re.sub(r"<(?=[/A-Za-z!])", r"\\<", str(text)).replace("|", "\\|").replace("\n", " — ")


def _md_block(block: Any, figure_dir: str) -> str:
    if isinstance(block, Text):
        return block.text
    if isinstance(block, NotRun):
        return f"> not run: {block.what}"
    if isinstance(block, Pre):
        return f"{block.summary}:\n\n```\n{block.text}\n```"
    if isinstance(block, Folded):
        return f"**{block.summary}**\n\n" + "\n".join(f"- {k}: {_md_cell(v)}"
                                                      for k, v in block.fields)
    if isinstance(block, Figure):
        return f"![{block.caption}]({figure_dir}/{block.name}.png)\n\n*{block.caption}*"
    if isinstance(block, Table):
        lines = ["| " + " | ".join(_md_cell(h) for h in block.header) + " |"]
        lines.append("|" + "---|" * len(block.header))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_markdown(
    title: str, verdict: tuple[str, str], sections: list[Section], figure_dir: str
) -> str:
    parts = [f"# {title}", "", f"**{verdict[1]}**", ""]
    for s in sections:
        parts += [f"## {s.title}", ""]
        parts += [_md_block(b, figure_dir) + "\n" for b in s.blocks]
    return "\n".join(parts)


def figures(sections: list[Section]) -> list[Figure]:
    return [b for s in sections for b in s.blocks if isinstance(b, Figure)]
