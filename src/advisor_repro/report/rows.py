"""The paper-beside-run table form: each row is one number of the paper, as the paper prints it,
next to this run's number in the same format, the expected range and the verdict of verify.

Verdicts come from verify/verify.json (the checks of repro/expected/<profile>.toml) by check id;
a row names its checks by id stem, and a stem's ".released" variant (the check that applies
to an imported release) counts as the same check. A check skipped by its conditions gives way
to one that ran. A row whose number the run does not have says why; a row whose number this
profile cannot produce like the paper's (another judge, another dataset) says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from advisor_repro.expected import CheckRow
from advisor_repro.report.render import Table
from advisor_repro.report.verify_record import VerifyRecord

Reader = Callable[[str], Any]
COLUMNS = ["paper", "this run", "expected range", "verdict"]


@dataclass(frozen=True)
class Row:
    label: str
    paper: str  # as the paper prints it
    value: str | None  # this run, in the paper's format; None = the run does not have it
    checks: Sequence[tuple[str, str]] = ()  # (short name, check id stem)
    missing: str = ""  # why value is None (e.g. "judge not run")
    note: str = ""  # why this profile cannot match the paper here


@dataclass
class Verdicts:
    """verify.json's checks by id, and what the report says when verify has not run."""

    record: VerifyRecord | None
    by_id: dict[str, CheckRow] = field(init=False)

    def __post_init__(self) -> None:
        checks = self.record.checks if self.record else []
        self.by_id = {c["id"]: c for c in checks}

    def shown(self, stems: Sequence[tuple[str, str]]) -> list[tuple[str, CheckRow]]:
        """The checks whose range the row shows: those that ran, else all that are present."""
        found = self.found(stems)
        ran = [(s, c) for s, c in found if c["status"] != "SKIP"]
        return ran or found

    def found(self, stems: Sequence[tuple[str, str]]) -> list[tuple[str, CheckRow]]:
        """(short name, check) per stem: the variant that ran, else the first one present."""
        out = []
        for short, stem in stems:
            variants = [self.by_id[i] for i in (stem, f"{stem}.released") if i in self.by_id]
            ran = [c for c in variants if c["status"] != "SKIP"]
            if ran or variants:
                out.append((short, (ran or variants)[0]))
        return out


def range_text(found: list[tuple[str, CheckRow]]) -> str:
    if not found:
        return "-"
    if len(found) == 1:
        return with_range_unit(found[0][1])
    return "; ".join(f"{short} {with_range_unit(c)}" for short, c in found)


def with_range_unit(check: CheckRow) -> str:
    unit = check.get("unit") or ""
    return check["range"] + (f" {unit}" if unit and check["range"][-1:].isdigit() else "")


def verdict(row: Row, verdicts: Verdicts) -> tuple[str, str]:
    """(text, CSS class) for one row."""
    if row.value is None:
        if row.missing.startswith("no "):
            return row.missing, "SKIP"
        return f"not run: {row.missing}" if row.missing else "not in this run", "SKIP"
    found = verdicts.found(row.checks)
    if verdicts.record is None:
        return (row.note or "verify not run (repro verify)"), ""
    if not found:
        where = verdicts.record.expected
        return (row.note or f"no expected range in {where}"), ""
    ran = [c for _, c in found if c["status"] != "SKIP"]
    failed = [c for c in ran if c["status"] == "FAIL"]
    if failed:
        info = "" if any(c["required"] for c in failed) else " (info)"
        return "FAIL" + info + ": " + "; ".join(c["why"] for c in failed), "FAIL"
    if ran:
        part = "" if len(ran) == len(found) else f" ({len(ran)} of {len(found)} checks ran)"
        return "PASS" + part, "PASS"
    # every check skipped: the profile's own reason first (another judge, another dataset)
    return "SKIP: " + (row.note or found[0][1]["why"]), "SKIP"


AS_ABOVE = "as above"  # a note repeated on the next row is said once


def table(rows: list[Row], verdicts: Verdicts, first: str = "") -> Table:
    body, classes = [], []
    last = ""
    for row in rows:
        text, cls = verdict(row, verdicts)
        if cls not in ("PASS", "FAIL"):
            text, last = (AS_ABOVE if text == last else text), text
        else:
            last = ""
        rng = range_text(verdicts.shown(row.checks)) if row.value is not None else "-"
        body.append([row.label, row.paper, row.value if row.value is not None else "-", rng, text])
        classes.append(cls)
    return Table([first, *COLUMNS], body, classes, kind="paper")


# ---- the paper's number formats ----------------------------------------------------------------
def num(x: Any, places: int) -> str | None:
    return f"{x:.{places}f}" if isinstance(x, int | float) and not isinstance(x, bool) else None


def signed(x: Any, places: int) -> str | None:
    return f"{x:+.{places}f}" if isinstance(x, int | float) and not isinstance(x, bool) else None


def mean_sd(block: Any, places: int = 2) -> str | None:
    """'2.14 ± 0.53' from {"mean", "sd"}."""
    if not isinstance(block, dict) or num(block.get("mean"), places) is None:
        return None
    sd = num(block.get("sd"), places)
    return num(block["mean"], places) + (f" ± {sd}" if sd is not None else "")


def delta_ci(delta: Any, lo: Any, hi: Any, places: int) -> str | None:
    """'-0.40 [-0.62, -0.18]'; the delta alone where the CI is absent."""
    d = signed(delta, places)
    if d is None:
        return None
    if signed(lo, places) is None or signed(hi, places) is None:
        return d
    return f"{d} [{signed(lo, places)}, {signed(hi, places)}]"


def count_of(k: Any, n: Any, places: int = 0) -> str | None:
    """'23/50 (46%)'."""
    if not isinstance(k, int) or not isinstance(n, int) or n <= 0:
        return None
    return f"{k}/{n} ({100 * k / n:.{places}f}%)"


def pct(x: Any, places: int = 1) -> str | None:
    """A rate 0..1 as '27.5%'."""
    return f"{100 * x:.{places}f}%" if num(x, places) is not None else None


def at(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.lstrip("-").isdigit():
            doc = doc[int(part)] if -len(doc) <= int(part) < len(doc) else None
        else:
            return None
    return doc
