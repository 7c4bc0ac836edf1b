"""verify/verify.json as a typed record: written by the verify stage, read by the report (its
headline, the claims, the paper tables' verdicts) through the same class.

The JSON on disk is the record's `to_json()`; `from_json` reads it back tolerantly (a record
written before a key existed reads that key as empty), as the report always has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

from advisor_repro.expected import CheckRow


class ClaimJson(TypedDict):
    """One claim of the paper in verify.json's headline."""

    id: str
    state: str  # tested | partly tested | not tested | contradicted
    text: str


class HeadlineJson(TypedDict):
    """report.headline.Headline as verify.json holds it."""

    state: str
    line: str
    ran: int
    required: int
    exit_code: int
    claims: list[ClaimJson]


class VerifyJson(TypedDict):
    expected: str
    expected_sha256: str
    strict: bool
    ok: bool
    counts: dict[str, int]  # PASS / FAIL / SKIP -> number of checks
    failing: list[str]
    checks: list[CheckRow]
    classes: dict[str, str]
    headline: NotRequired[HeadlineJson]


@dataclass
class VerifyRecord:
    expected: str  # the expected file as the reader knows it (repro/expected/paper.toml)
    expected_sha256: str = ""
    strict: bool = False
    ok: bool = True
    counts: dict[str, int] = field(default_factory=dict)
    failing: list[str] = field(default_factory=list)  # ids of the checks that fail the run
    checks: list[CheckRow] = field(default_factory=list)
    classes: dict[str, str] = field(default_factory=dict)  # tolerance class -> its meaning
    headline: HeadlineJson | None = None  # set by the stage once the record is assessed

    def to_json(self) -> VerifyJson:
        out: VerifyJson = {
            "expected": self.expected, "expected_sha256": self.expected_sha256,
            "strict": self.strict, "ok": self.ok, "counts": self.counts,
            "failing": self.failing, "checks": self.checks, "classes": self.classes,
        }  # fmt: skip
        if self.headline is not None:
            out["headline"] = self.headline
        return out

    @classmethod
    def from_json(cls, d: VerifyJson) -> VerifyRecord:
        return cls(
            expected=d.get("expected", "the expected file"),
            expected_sha256=d.get("expected_sha256", ""),
            strict=bool(d.get("strict")),
            ok=d.get("ok", True),
            counts=d.get("counts") or {},
            failing=list(d.get("failing") or ()),
            checks=list(d.get("checks") or ()),
            classes=d.get("classes") or {},
            headline=d.get("headline") or None,
        )


def read(doc: VerifyJson | None) -> VerifyRecord | None:
    """The record from verify.json's parsed content; None where verify has not run."""
    return VerifyRecord.from_json(doc) if doc else None
