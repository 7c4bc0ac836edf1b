"""The answer to "does this run reproduce the paper?" in one line: the same words in verify's
printout, its exit code and the report's first screen.

    REPRODUCED      every required check of the paper ran and passed
    PARTIAL         n of m required checks ran, all passed; the rest were skipped (a stage not
                    run, another judge, an import of the released files)
    MECHANISM ONLY  the profile runs the code path on other weights (smoke: a 135M model;
                    rehearsal: random 7B-shaped weights); its checks test the mechanism, never
                    the paper's numbers
    FAIL            a required check failed (with verify.strict, also one that was skipped)

A green PASS over skipped required checks is what this replaces: MLPerf's checker calls a
result valid only when every required check ran.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor_repro.config import Config
from advisor_repro.errors import VERIFY_PARTIAL, VerifyFailed
from advisor_repro.report import claims
from advisor_repro.report.rows import Verdicts
from advisor_repro.report.verify_record import HeadlineJson, VerifyRecord

REPRODUCED, PARTIAL, MECHANISM, FAILED, NONE = (
    "REPRODUCED", "PARTIAL", "MECHANISM ONLY", "FAIL", "NOT VERIFIED")  # fmt: skip
CSS = {REPRODUCED: "PASS", PARTIAL: "PARTIAL", MECHANISM: "MECHANISM", FAILED: "FAIL",
       NONE: "none"}  # fmt: skip
# `repro verify`'s exit code per state (README, "Exit codes"); `repro all` exits 0 unless FAIL,
# since its job (running every stage) is done and its last line prints the state
EXIT = {REPRODUCED: 0, MECHANISM: 0, PARTIAL: VERIFY_PARTIAL, FAILED: VerifyFailed.exit_code,
        NONE: 0}


@dataclass(frozen=True)
class Headline:
    state: str
    ran: int  # required checks that ran (PASS or FAIL)
    required: int  # required checks in the expected file
    failing: tuple[str, ...]
    claims: tuple[claims.ClaimLine, ...]
    strict_skips: int = 0  # required checks skipped, counted as failing under verify.strict

    @property
    def css(self) -> str:
        return CSS[self.state]

    @property
    def exit_code(self) -> int:
        return EXIT[self.state]

    def line(self) -> str:
        if self.state == NONE:
            return "NOT VERIFIED: repro verify has not run on this run directory"
        whose = "this profile's" if self.state == MECHANISM else "the paper's"
        counts = f"{self.ran} of {self.required} of {whose} required checks ran"
        if self.state == FAILED and self.strict_skips:
            return (f"FAIL (strict): {len(self.failing) - self.strict_skips} failed, "
                    f"{self.strict_skips} required checks skipped")  # fmt: skip
        if self.state == FAILED:
            return f"FAIL: {len(self.failing)} required check(s) failed: {', '.join(self.failing)}"
        if self.state == MECHANISM:
            return (f"MECHANISM ONLY: this profile tests the code path, not the paper's numbers "
                    f"({counts}, all passed)")  # fmt: skip
        if self.state == PARTIAL:
            return f"PARTIAL: {counts}, all passed; {self.required - self.ran} skipped"
        return f"REPRODUCED: all {self.required} of the paper's required checks ran and passed"

    def to_json(self) -> HeadlineJson:
        return {"state": self.state, "line": self.line(), "ran": self.ran,
                "required": self.required, "exit_code": self.exit_code,
                "claims": [{"id": c.claim.id, "state": c.state, "text": c.text()}
                           for c in self.claims]}  # fmt: skip


def mechanism_only(cfg: Config) -> bool:
    """Weights other than the paper's base (the smoke model, random 7B-shaped weights)."""
    return cfg.model.source != "hub"


def headline(cfg: Config, record: VerifyRecord | None) -> Headline:
    verdicts = Verdicts(record)
    lines = tuple(claims.assess(c, cfg, verdicts) for c in claims.CLAIMS)
    if not record:
        return Headline(NONE, 0, 0, (), lines)
    required = [c for c in record.checks if c["required"]]
    ran = [c for c in required if c["status"] != "SKIP"]
    failing = tuple(record.failing)
    strict_skips = sum(c["status"] == "SKIP" for c in required) if record.strict else 0
    if failing or any(c["status"] == "FAIL" for c in required):
        state = FAILED
        failing = failing or tuple(c["id"] for c in required if c["status"] == "FAIL")
    elif mechanism_only(cfg):
        state = MECHANISM
    elif len(ran) == len(required):
        state = REPRODUCED
    else:
        state = PARTIAL
    return Headline(state, len(ran), len(required), failing, lines,
                    strict_skips if state == FAILED else 0)
