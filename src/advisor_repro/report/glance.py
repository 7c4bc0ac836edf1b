"""The report's first screen under the headline: one line per claim of the paper, a summary card
of this run's figures beside the paper's, and what to run next for each claim not yet tested.

The paper's figures come from one place, repro/expected/paper.toml (the same numbers verify
checks), whatever profile ran; memory in GiB, the paper's GB converted beside it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import cache
from typing import Any

from advisor_repro.config import Config
from advisor_repro.expected import EXPECTED_DIR, Value
from advisor_repro.report import claims, headline
from advisor_repro.report.render import Section, Table, Text
from advisor_repro.report.verify_record import VerifyRecord
from advisor_repro.report.verify_table import paper_gib

Reader = Callable[[str], Any]
NONE = "-"  # the report's one empty-cell marker
SEGMENTS = (("train-1", "segment 1", "train1"), ("train-2", "segment 2", "train2"))


@cache
def paper_values() -> dict[str, Value | None]:
    doc = tomllib.loads((EXPECTED_DIR / "paper.toml").read_text(encoding="utf-8"))
    return {c["id"]: c.get("paper") for c in doc.get("check", [])}


def paper(cid: str) -> str:
    v = paper_values().get(cid)
    return NONE if v is None else paper_gib(str(v))


def _num(x: Any, places: int = 4) -> str:
    return f"{x:.{places}f}" if isinstance(x, int | float) and not isinstance(x, bool) else NONE


def hms(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return NONE
    s = round(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"


def gpu_name(summary: dict[str, Any], pre: dict[str, Any] | None) -> str:
    """The device that ran a segment: its summary's own record, else preflight's."""
    if summary.get("gpu"):
        return str(summary["gpu"])
    if summary.get("device") == "cpu":
        return "CPU"
    return str(((pre or {}).get("device") or {}).get("name") or "GPU, name not recorded")


def peak_gib(summary: dict[str, Any]) -> str:
    peak = summary.get("memory_peak") or {}
    for key, label in (("nvml_used_gib", "NVML used"), ("cuda_reserved_gib", "torch reserved"),
                       ("rss_peak_gib", "CPU process RSS")):  # fmt: skip
        if isinstance(peak.get(key), int | float):
            return f"{peak[key]:.2f} GiB ({label})"
    return NONE


def card_rows(get: Reader) -> list[list[str]]:
    pre = get("preflight/report.json")
    rows = []
    for stage, name, cid in SEGMENTS:
        s = get(f"{stage}/summary.json") or {}
        if not s:
            rows.append([f"{name}: loss start -> end", f"not run ({stage})",
                         f"{paper(cid + '.loss_start')} -> {paper(cid + '.loss_end')}"])
            continue
        rows += [
            [f"{name}: loss start -> end", f"{_num(s.get('start_loss'))} -> "
             f"{_num(s.get('end_loss'))}",
             f"{paper(cid + '.loss_start')} -> {paper(cid + '.loss_end')}"],
            [f"{name}: peak memory", peak_gib(s), paper(cid + ".peak_nvml")],
            [f"{name}: wall time", hms(s.get("process_seconds")),
             hms(paper_values().get(cid + ".wall_clock"))],
            [f"{name}: ran on", gpu_name(s, pre) + (f", {s['dtype']}" if s.get("dtype") else ""),
             "P100" if stage == "train-1" else "T4"],
        ]  # fmt: skip
    comparison = get("control/comparison.json") or {}
    held = (comparison.get("heldout_loss") or {}).get("handoff")
    rows.append(["held-out loss (test split, after segment 2)", _num(held),
                 "not reported in the paper"])  # fmt: skip
    metrics = get("metrics/summary.json") or {}
    for cap in sorted((k for k in metrics if k.isdigit()), key=int):
        delta = (metrics[cap].get("bertscore_f1") or {}).get("delta")
        paper_cap = {"256": "256", "512": "512"}.get(cap)
        rows.append([f"BERTScore F1, FT - base ({cap} tokens)", _num(delta),
                     paper(f"metrics.{paper_cap}.bertscore_f1.delta") if paper_cap else
                     "the paper's caps are 256 and 512"])  # fmt: skip
    judge = get("judge/summary.json") or {}
    counts = ((judge.get("primary") or {}).get("preference") or {}).get("counts") or {}
    if counts:
        rows.append(["judge preference: base / FT / tie",
                     " / ".join(str(counts.get(k, 0)) for k in ("base", "ft", "tie")),
                     f"{paper('judge.preference.base.released')} / "
                     f"{paper('judge.preference.ft.released')} / "
                     f"{paper('judge.preference.tie.released')}"])  # fmt: skip
    else:
        rows.append(["judge preference: base / FT / tie", "not run (judge)", "23 / 9 / 18"])
    audit = get("audit/summary.json") or {}
    errors = audit.get("confident_errors") or {}
    rows.append(["confident factual errors: FT / base",
                 f"{errors['ft']} / {errors.get('base', NONE)}" if "ft" in errors
                 else "not run (audit)",
                 f"{paper('audit.ft_errors')} / {paper('audit.base_errors')}"])  # fmt: skip
    return rows


# The command that tests each claim, by what is missing
NEXT = {
    "recipe": ("on one 16 GB GPU (T4 or P100; or any GPU under the 16 GB cap): "
               "repro fetch --profile paper, then repro all --profile paper --run-dir runs/paper"),
    "caution": ("the paper's judge and audits on a paper run: ANTHROPIC_API_KEY=... repro all "
                "--profile paper --run-dir runs/paper (the judge, audit and verify stages; "
                "they reuse the trained adapters)"),
    "data": ("the training-data audit with the paper's judge: ANTHROPIC_API_KEY=... "
             "repro audit-training --run-dir runs/paper, then repro verify --run-dir runs/paper"),
}


def next_rows(lines: tuple[claims.ClaimLine, ...]) -> list[list[str]]:
    return [[line.claim.name, line.state, NEXT[line.claim.id]] for line in lines
            if line.state in ("not tested", "partly tested")]  # fmt: skip


def glance_section(get: Reader, cfg: Config, record: VerifyRecord | None) -> Section:
    head = headline.headline(cfg, record)
    lines = head.claims
    blocks: list[Any] = [
        Text("Each claim of the paper, tested (every check that bears on it ran and passed), "
             "partly tested, not tested (with the reason) or contradicted (a required check "
             "failed). A smoke or rehearsal profile runs the code path on other weights: its "
             "checks test the mechanism, never the paper's numbers."),
        claims.claims_table(cfg, record),
        Text("Summary card: this run beside the paper (memory in GiB; the paper's GB "
             "converted)."),
        Table(["figure", "this run", "paper"], card_rows(get), kind="card"),
    ]
    todo = next_rows(lines)
    if todo:
        blocks += [Text("What to run next, for each claim this run does not fully test:"),
                   Table(["claim", "now", "command"], todo, kind="next")]  # fmt: skip
    return Section("claims", "At a glance: the paper's claims and this run", blocks)
