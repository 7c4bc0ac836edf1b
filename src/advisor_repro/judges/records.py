"""The judge stage's records, as written to disk: a verdict row (judge/verdicts.jsonl), the
mapping (judge/mapping.json) and the summary (judge/summary.json) with its Table 4 blocks.
The judge stage, `repro import-release` and the statistics (stats.py) share them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NotRequired, TypedDict

from advisor_repro.judges.cache import Asking, JudgeIdentity

SLOT_RULE = "per prompt in order, random.Random(seed).random() < 0.5 puts base in slot A"
COUNTING_RULE = (
    "verdicts not 'ok' (unparseable, missing) have no scores: left out of means, SDs and "
    "deltas (n_scored), counted as 'not_ok' in the preferences, whose shares are over all "
    "judged prompts"
)
BOOTSTRAP_INTERVAL = "sorted resample means at indices int(0.025 R) and int(0.975 R)"

SampleId = str | int

# A line of judge/verdicts.jsonl: the released judge-scores columns (absent when the reply was
# not usable), the pass, the base slot, the reply's bookkeeping (asking.ReplyRecord) and the
# judge's identity; `origin` on the rows `repro import-release` writes. ("pass" is a keyword:
# the functional form.)
VerdictRow = TypedDict("VerdictRow", {
    "sample_id": SampleId,
    "pass": NotRequired[str],  # "primary" (the default) | "swap"
    "base_slot": NotRequired[str],  # "A" | "B"
    "domain_a": NotRequired[int],
    "help_a": NotRequired[int],
    "note_a": NotRequired[str],
    "domain_b": NotRequired[int],
    "help_b": NotRequired[int],
    "note_b": NotRequired[str],
    "preferred_slot": NotRequired[str],  # "a" | "b" | "tie"
    "status": NotRequired[str],  # "ok" (the default) | "unparseable" | "missing"
    "attempts": NotRequired[int],
    "cache_key": NotRequired[str],
    "errors": NotRequired[list[str]],
    "raw": NotRequired[str],
    "judge": NotRequired[JudgeIdentity],
    "origin": NotRequired[str],
})


class MappingDocument(TypedDict):
    """judge/mapping.json: the rule and each prompt's base slot."""

    rule: str
    slot_seed: int
    order: list[str]
    base_slot: dict[str, str]


class Deblinded(TypedDict):
    """An ok verdict's scores and preference as base / ft."""

    sample_id: SampleId
    base_domain: int
    ft_domain: int
    base_help: int
    ft_help: int
    preferred: str  # "base" | "ft" | "tie"
    preferred_slot: str


class ModelScore(TypedDict):
    mean: float
    sd: float


class MetricScores(TypedDict):
    base: ModelScore
    ft: ModelScore
    delta: float
    ci95: list[float]


class ScoreTable(TypedDict):
    domain: MetricScores | None  # None when no verdict is ok
    help: MetricScores | None


class PreferenceCounts(TypedDict):
    n: int
    counts: dict[str, int]  # base, ft, tie, not_ok
    shares: dict[str, float | None]


class DivergentPrompt(TypedDict):
    sample_id: SampleId
    base_domain: int
    ft_domain: int
    favours: str


class Divergent(TypedDict):
    n: int
    favour_base: int
    favour_ft: int
    prompts: list[DivergentPrompt]


class SignTest(TypedDict):
    base_preferred: int
    ft_preferred: int
    p_two_sided: float
    note: str


class CrossTests(TypedDict):
    order: list[str]
    table: list[list[int]]
    stuart_maxwell_shifted: dict[str, float | int | None]
    stuart_maxwell: dict[str, float | int | None]
    bowker: dict[str, float | int | None]
    note: str


class PreferenceTests(TypedDict):
    sign_test: SignTest
    help_winner_x_preference: CrossTests


class PassSummary(TypedDict):
    """Table 4 and its companions for one pass."""

    n_judged: int
    n_scored: int
    n_ok: int
    unparseable: int
    scores: ScoreTable
    preference: PreferenceCounts
    divergent: Divergent
    tests: PreferenceTests | None  # None when no verdict is ok


class SwapConsistency(TypedDict):
    n_both: int
    consistent: int
    consistency_rate: float | None
    inconsistent: int
    inconsistent_sample_ids: list[str]
    flipped_verdicts_slot_a: int
    flipped_verdicts_slot_b: int
    position_bias_rate: float | None
    combined_preference: PreferenceCounts


class JudgeBootstrap(TypedDict):
    resamples: int
    seed: int
    rng: str
    interval: str


class Calls(TypedDict):
    paid: int  # replies paid for in this run
    cached: int  # replies read from judge/cache


# judge/summary.json: fixed keys, one PassSummary per pass under its name
SummaryValue = (str | dict[str, dict[str, int]] | JudgeBootstrap | PassSummary | SwapConsistency
                | JudgeIdentity | Calls | Asking)
FIXED_KEYS = ("mapping_rule", "status_counts", "counting_rule", "bootstrap", "swap_consistency",
              "judge", "calls", "asking")


@dataclass
class JudgeSummary:
    """judge/summary.json: `summarize`'s statistics of the verdicts, plus, from the judge
    stage, who judged and what the asking cost (absent from an imported release's)."""

    status_counts: dict[str, dict[str, int]]  # pass -> status -> verdicts
    bootstrap: JudgeBootstrap
    passes: dict[str, PassSummary]  # "primary" first, then "swap"
    swap_consistency: SwapConsistency | None = None  # both passes only
    judge: JudgeIdentity | None = None
    calls: Calls | None = None
    asking: Asking | None = None
    mapping_rule: str = SLOT_RULE
    counting_rule: str = COUNTING_RULE

    def to_json(self) -> dict[str, SummaryValue]:
        out: dict[str, SummaryValue] = {
            "mapping_rule": self.mapping_rule, "status_counts": self.status_counts,
            "counting_rule": self.counting_rule, "bootstrap": self.bootstrap}
        out.update(self.passes)
        optional = {"swap_consistency": self.swap_consistency, "judge": self.judge,
                    "calls": self.calls, "asking": self.asking}
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    @classmethod
    def from_json(cls, d: dict[str, SummaryValue]) -> JudgeSummary:
        """The passes are every key that is not one of the fixed ones."""
        fixed = {k: d[k] for k in FIXED_KEYS if k in d}
        return cls(passes={k: v for k, v in d.items() if k not in FIXED_KEYS}, **fixed)
