"""verify.json's checks as a reader takes them in: the checks that ran, grouped by the paper's
section, FAIL before PASS; the skipped ones folded by reason with a count; the paper's numbers
in its words with GB converted to GiB (the one memory unit of this package).

Shared by the verify stage (its console table and verify.md, rendered here: `console`,
`markdown`) and the report, so both say the same.
"""

from __future__ import annotations

import re

from advisor_repro.expected import FAIL, PASS, SKIP, CheckRow, with_unit
from advisor_repro.report.rows import with_range_unit
from advisor_repro.report.verify_record import VerifyRecord

# The paper's order; a location that names none of these goes last under its own first words
SECTION_ORDER = ("Dataset", "Model and training", "Training dynamics", "Evaluation", "Audits")
GB_PER_GIB = 2**30 / 1e9  # the paper quotes GB (10^9 bytes); this package measures GiB
HEADER = ["status", "check (paper location)", "paper", "this run", "expected range", "note"]
_NOT_RUN = re.compile(r"stage not run \(([\w-]+)/\S+ is absent\)")
_GB = re.compile(r"(\d+(?:\.\d+)?)(?:\s*-\s*(\d+(?:\.\d+)?))?\s*GB\b")


def gib(gb: float) -> str:
    return f"{gb / GB_PER_GIB:.2f}"


def paper_gib(text: str) -> str:
    """'11.4-11.6 GB used' -> '11.4-11.6 GB (10.62-10.80 GiB) used': the paper's GB quoted,
    converted to the report's unit beside it."""
    def one(m: re.Match[str]) -> str:
        lo, hi = float(m.group(1)), m.group(2)
        conv = gib(lo) + (f"-{gib(float(hi))}" if hi else "")
        return f"{m.group(0)} ({conv} GiB)"

    return _GB.sub(one, text)


def section(where: str) -> str:
    head = re.split(r"[:(]", where or "", maxsplit=1)[0].strip()
    if head == "Data":
        return "Dataset"
    if "/" in head:  # a document of the author's release
        return "Dataset" if "dataset" in head else "The author's released documents"
    return head or "Other"


def status_text(c: CheckRow) -> str:
    return c["status"] + ("" if c["required"] else " (not required)")


def cells(c: CheckRow) -> list[str]:
    paper = c["paper"]
    paper = paper_gib(paper) if isinstance(paper, str) else with_unit(paper, c["unit"])
    return [status_text(c), f"{c['id']}\n{c['where']}", paper, with_unit(c["value"], c["unit"]),
            with_range_unit(c), c["why"] or ""]  # fmt: skip


def grouped(record: VerifyRecord) -> list[tuple[str, list[CheckRow]]]:
    """(section, checks that ran: FAIL first, then PASS) in the paper's order."""
    groups: dict[str, list[CheckRow]] = {}
    for c in record.checks:
        if c["status"] != "SKIP":
            groups.setdefault(section(c["where"]), []).append(c)
    order = {s: i for i, s in enumerate(SECTION_ORDER)}
    names = sorted(groups, key=lambda s: (order.get(s, len(order)), s))
    return [(s, sorted(groups[s], key=lambda c: c["status"] != "FAIL")) for s in names]


def folded(record: VerifyRecord) -> list[tuple[str, list[str]]]:
    """(reason, ids of the skipped checks) per reason, the commonest first: a reason repeated
    70 times is said once."""
    by: dict[str, list[str]] = {}
    for c in record.checks:
        if c["status"] == "SKIP":
            by.setdefault(reason_words(c["why"]), []).append(c["id"])
    return sorted(by.items(), key=lambda kv: -len(kv[1]))


def reason_words(why: str) -> str:
    """"stage not run (train-1/summary.json is absent)" -> "stage train-1 not run": one
    reason per stage, whichever of its files a check reads."""
    return _NOT_RUN.sub(r"stage \1 not run", why or "skipped")


def skipped_line(reason: str, ids: list[str]) -> str:
    return f"{len(ids)} skipped: {reason}: " + ", ".join(ids)


# ---- verify's own files: the console table and verify.md ------------------------------------
def summary_lines(record: VerifyRecord) -> list[str]:
    """The state (REPRODUCED / PARTIAL / MECHANISM ONLY / FAIL), then one line per claim."""
    n = record.counts
    head = record.headline
    lines = [f"verify: {n[PASS]} pass, {n[FAIL]} fail, {n[SKIP]} skip "
             f"({'strict, ' if record.strict else ''}expected ranges: {record.expected})",
             head["line"] if head else ""]  # fmt: skip
    lines += [f"  claim {c['text']}" for c in (head["claims"] if head else [])]
    return lines


def console(record: VerifyRecord) -> str:
    rows = [[c for i, c in enumerate(cells(c)) if i != 1] for c in record.checks
            if c["status"] != SKIP]  # fmt: skip
    ids = [c["id"] for c in record.checks if c["status"] != SKIP]
    table = [["status", "check", "paper", "this run", "range", "note"]]
    table += [[r[0], i, *r[1:]] for r, i in zip(rows, ids, strict=True)]
    order = {FAIL: 0, PASS: 1}
    table[1:] = sorted(table[1:], key=lambda r: order.get(r[0].split()[0], 2))
    caps = (22, 40, 24, 16, 24)
    widths = [min(max(len(r[i]) for r in table), cap) for i, cap in enumerate(caps)]
    lines = ["  ".join(r[i][: widths[i]].ljust(widths[i]) for i in range(5)) + "  " + r[5]
             for r in table]  # fmt: skip
    lines += [skipped_line(why, skipped)
              for why, skipped in folded(record)]  # fmt: skip
    return "\n".join(lines + summary_lines(record))


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " — ")


def markdown(record: VerifyRecord) -> str:
    head = record.headline
    lines = ["# Verify: this run against the paper", "", f"**{head['line'] if head else ''}**", ""]
    lines += [f"- claim {c['text']}" for c in (head["claims"] if head else [])]
    lines += ["", summary_lines(record)[0].removeprefix("verify: ").capitalize() + ".", ""]
    for name, checks in grouped(record):
        lines += [f"## {name}", "", "| " + " | ".join(HEADER) + " |",
                  "|---" * len(HEADER) + "|"]  # fmt: skip
        lines += ["| " + " | ".join(_md(x) for x in cells(c)) + " |" for c in checks]
        lines.append("")
    lines += ["## Skipped checks, by reason", ""]
    lines += [f"- {_md(skipped_line(w, ids))}"
              for w, ids in folded(record)] or ["- none"]  # fmt: skip
    lines += ["", "## Tolerance classes", ""]
    lines += [f"- `{k}`: {v}" for k, v in record.classes.items()]
    lines += ["", "## How each value is read, and why each range", ""]
    lines += [
        f"- `{c['id']}` ({c['class']}, reads `{c['read']}`): {c['reason']}"
        for c in record.checks
    ]
    return "\n".join(lines) + "\n"
