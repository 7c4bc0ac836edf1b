"""Judge statistics, pure: the slot mapping, de-blinding, Table 4, the preference tests and the
swap-pass position statistics. Verdict rows in, the records of records.py out (TypedDicts:
plain dicts at run time; `summarize` returns the JudgeSummary of judge/summary.json).

Verdict rows carry the released judge-scores columns (sample_id, domain_a, help_a, domain_b,
help_b, preferred_slot, note_a, note_b) plus `pass` ("primary" | "swap"), `status` ("ok" |
"unparseable" | "missing") and, when known, `base_slot` ("A" | "B"). The judge stage and
`repro import-release` both write such rows; `summarize` runs unchanged on either.

Counting rule for verdicts that are not "ok": they have no scores, so they are left out of
means, SDs and paired deltas (n_scored says how many remain), and they are their own category
in the preference counts, whose shares keep all judged prompts as denominator.
"""

from __future__ import annotations

import random
from typing import Any

from advisor_repro.judges.contingency import bowker, shift_zeros, sign_test, stuart_maxwell
from advisor_repro.judges.records import (
    BOOTSTRAP_INTERVAL,
    SLOT_RULE,
    Deblinded,
    Divergent,
    DivergentPrompt,
    JudgeSummary,
    MappingDocument,
    MetricScores,
    PassSummary,
    PreferenceCounts,
    PreferenceTests,
    SampleId,
    ScoreTable,
    SwapConsistency,
    VerdictRow,
)

MODELS = ("base", "ft")
OUTCOMES = ("base", "ft", "tie")
# ---- the blinding ------------------------------------------------------------------------------
def slot_mapping(sample_ids: list[SampleId], seed: int = 42) -> dict[str, str]:
    """The paper's rule: one random.Random(seed), one draw per prompt in order."""
    rng = random.Random(seed)
    return {str(sid): ("A" if rng.random() < 0.5 else "B") for sid in sample_ids}


def mapping_document(sample_ids: list[SampleId], seed: int) -> MappingDocument:
    return {
        "rule": SLOT_RULE,
        "slot_seed": seed,
        "order": [str(s) for s in sample_ids],
        "base_slot": slot_mapping(sample_ids, seed),
    }


def base_slots(doc: Any) -> dict[str, str]:
    """sample_id -> "A" | "B" from a mapping.json: {"base_slot": {id: slot}} (ours), or a
    plain {id: slot} / {id: {"base_slot": slot}} / [{"sample_id", "base_slot"}]."""
    if isinstance(doc, dict) and isinstance(doc.get("base_slot"), dict):
        doc = doc["base_slot"]
    if isinstance(doc, list):
        doc = {str(r["sample_id"]): r["base_slot"] for r in doc}
    out = {}
    for sid, v in doc.items():
        slot = v.get("base_slot") if isinstance(v, dict) else v
        if str(slot).upper() not in ("A", "B"):
            raise ValueError(f"mapping for sample {sid}: base slot {slot!r} is not A or B")
        out[str(sid)] = str(slot).upper()
    return out


def swapped(slot: str) -> str:
    return "B" if slot == "A" else "A"


def deblind(row: VerdictRow, base_slot: str) -> Deblinded:
    """A verdict's slot scores and preference as base / ft."""
    b, f = ("a", "b") if base_slot == "A" else ("b", "a")
    pref = row["preferred_slot"]
    return {
        "sample_id": row["sample_id"],
        "base_domain": int(row[f"domain_{b}"]),
        "ft_domain": int(row[f"domain_{f}"]),
        "base_help": int(row[f"help_{b}"]),
        "ft_help": int(row[f"help_{f}"]),
        "preferred": "tie" if pref == "tie" else ("base" if pref == b else "ft"),
        "preferred_slot": pref,
    }


def winner(base: int, ft: int) -> str:
    return "base" if base > ft else ("ft" if ft > base else "tie")


# ---- one pass --------------------------------------------------------------------------------
def score_table(rows: list[Deblinded], resamples: int, seed: int) -> ScoreTable:
    """Per metric: per-model mean and population SD, mean paired delta (ft - base) and its
    bootstrap 95% CI (random.Random(seed), sorted resample means, indices 25 and 975)."""
    return {"domain": _metric_scores(rows, "domain", resamples, seed),
            "help": _metric_scores(rows, "help", resamples, seed)}


def _metric_scores(rows: list[Deblinded], metric: str, resamples: int, seed: int
                   ) -> MetricScores | None:
    from advisor_repro.stats import bootstrap_ci_random, mean_sd

    if not rows:
        return None
    base = [r["base_domain"] if metric == "domain" else r["base_help"] for r in rows]
    ft = [r["ft_domain"] if metric == "domain" else r["ft_help"] for r in rows]
    deltas = [f - b for b, f in zip(base, ft, strict=True)]
    (bm, bsd), (fm, fsd), (dm, _) = mean_sd(base), mean_sd(ft), mean_sd(deltas)
    lo, hi = bootstrap_ci_random(deltas, resamples=resamples, seed=seed)
    return {
        "base": {"mean": bm, "sd": bsd},
        "ft": {"mean": fm, "sd": fsd},
        "delta": dm,
        "ci95": [lo, hi],
    }


def preference_counts(outcomes: list[str], n_judged: int) -> PreferenceCounts:
    """Counts and shares of base / ft / tie (+ not ok), shares over all judged prompts."""
    counts = {o: outcomes.count(o) for o in OUTCOMES}
    counts["not_ok"] = n_judged - sum(counts.values())
    return {
        "n": n_judged,
        "counts": counts,
        "shares": {k: (v / n_judged if n_judged else None) for k, v in counts.items()},
    }


def divergent(rows: list[Deblinded]) -> Divergent:
    """Prompts whose domain-accuracy scores differ, and the model each favours."""
    items: list[DivergentPrompt] = [
        {
            "sample_id": r["sample_id"],
            "base_domain": r["base_domain"],
            "ft_domain": r["ft_domain"],
            "favours": winner(r["base_domain"], r["ft_domain"]),
        }
        for r in rows
        if r["base_domain"] != r["ft_domain"]
    ]
    return {
        "n": len(items),
        "favour_base": sum(i["favours"] == "base" for i in items),
        "favour_ft": sum(i["favours"] == "ft" for i in items),
        "prompts": items,
    }


def cross_table(first: list[str], second: list[str]) -> list[list[int]]:
    """3 x 3 counts, rows = `first` outcome, columns = `second`, order base, ft, tie."""
    return [
        [sum(1 for a, b in zip(first, second, strict=True) if a == r and b == c) for c in OUTCOMES]
        for r in OUTCOMES
    ]


def preference_tests(rows: list[Deblinded]) -> PreferenceTests:
    """The paper's "McNemar-Bowker chi2(2) = 9.3, p = 0.0095", and the tests that fit.

    Of the constructions we tried on the released scores (README, "The judge"), one gives
    9.3 / 0.0095: Stuart-Maxwell marginal homogeneity on the 3 x 3 table of helpfulness-score
    winner x stated preference, after statsmodels' default shift of 0.5 into empty cells
    (chi2(2) = 9.313, p = 0.00950). Without the shift it is 12.0 (p = 0.0025); the Bowker
    statistic of the shifted table is 9.315 but has 3 df (p = 0.025). The question the paper
    asks, "is base preferred more often than the fine-tuned model?", is answered by the exact
    sign test on the decisive preferences (23 vs 9: p = 0.020)."""
    pref = [r["preferred"] for r in rows]
    help_winner = [winner(r["base_help"], r["ft_help"]) for r in rows]
    table = cross_table(help_winner, pref)
    base_wins, ft_wins = pref.count("base"), pref.count("ft")
    return {
        "sign_test": {
            "base_preferred": base_wins,
            "ft_preferred": ft_wins,
            "p_two_sided": sign_test(ft_wins, base_wins + ft_wins),
            "note": "exact binomial test of base vs ft preferences, ties left out",
        },
        "help_winner_x_preference": {
            "order": list(OUTCOMES),
            "table": table,
            "stuart_maxwell_shifted": stuart_maxwell(shift_zeros(table)),
            "stuart_maxwell": stuart_maxwell(table),
            "bowker": bowker(table),
            "note": "rows: which model the helpfulness scores favour; columns: stated "
            "preference. stuart_maxwell_shifted is the construction that reproduces the "
            "paper's chi2(2) = 9.3, p = 0.0095 (statsmodels SquareTable default "
            "shift_zeros=True); the paper calls it McNemar-Bowker",
        },
    }


def pass_summary(rows: list[Deblinded], n_judged: int, resamples: int, seed: int) -> PassSummary:
    """Table 4 and its companions for one pass; `rows` are de-blinded ok verdicts."""
    return {
        "n_judged": n_judged,
        "n_scored": len(rows),
        "n_ok": len(rows),  # usable verdicts (= n_scored); unparseable: the rest
        "unparseable": n_judged - len(rows),
        "scores": score_table(rows, resamples, seed),
        "preference": preference_counts([r["preferred"] for r in rows], n_judged),
        "divergent": divergent(rows),
        "tests": preference_tests(rows) if rows else None,
    }


# ---- both passes ---------------------------------------------------------------------------------
def swap_consistency(
    primary: dict[str, Deblinded], swap: dict[str, Deblinded], n_judged: int
) -> SwapConsistency:
    """Beyond the paper: agreement of the two passes (slots swapped), keyed by sample_id.

    consistent: the de-blinded preference is the same in both passes.
    position_bias_rate: among the verdicts of inconsistent prompts that name a slot, the share
    that name slot A (0.5 = no lean to either position).
    combined: preferences with an inconsistent prompt counted as a tie."""
    both = [sid for sid in primary if sid in swap]
    consistent = [sid for sid in both if primary[sid]["preferred"] == swap[sid]["preferred"]]
    flipped = [sid for sid in both if sid not in set(consistent)]
    slots = [v[sid]["preferred_slot"] for sid in flipped for v in (primary, swap)]
    named = [s for s in slots if s in ("a", "b")]
    combined = [primary[sid]["preferred"] if sid in set(consistent) else "tie" for sid in both]
    return {
        "n_both": len(both),
        "consistent": len(consistent),
        "consistency_rate": len(consistent) / len(both) if both else None,
        "inconsistent": len(flipped),
        "inconsistent_sample_ids": flipped,
        "flipped_verdicts_slot_a": named.count("a"),
        "flipped_verdicts_slot_b": named.count("b"),
        "position_bias_rate": named.count("a") / len(named) if named else None,
        "combined_preference": preference_counts(combined, n_judged),
    }


def summarize(
    verdicts: list[VerdictRow],
    mapping: dict[str, str],
    resamples: int = 1000,
    seed: int = 42,
) -> JudgeSummary:
    """judge/summary.json from verdict rows and the base-slot mapping (sample_id -> A/B)."""
    passes: dict[str, dict[str, Deblinded]] = {}
    judged: dict[str, int] = {}
    status: dict[str, dict[str, int]] = {}
    for row in verdicts:
        name = row.get("pass", "primary")
        sid = str(row["sample_id"])
        judged[name] = judged.get(name, 0) + 1
        st = row.get("status", "ok")
        status.setdefault(name, {}).setdefault(st, 0)
        status[name][st] += 1
        if st != "ok":
            continue
        slot = row.get("base_slot") or (
            mapping[sid] if name == "primary" else swapped(mapping[sid])
        )
        passes.setdefault(name, {})[sid] = deblind(row, slot)
    out = JudgeSummary(
        status_counts=status,
        bootstrap={"resamples": resamples, "seed": seed, "rng": "random.Random",
                   "interval": BOOTSTRAP_INTERVAL},
        passes={name: pass_summary(list(passes.get(name, {}).values()), judged[name],
                                   resamples, seed)
                for name in sorted(judged, key=lambda p: (p != "primary", p))},
    )
    if "primary" in judged and "swap" in judged:
        out.swap_consistency = swap_consistency(
            passes.get("primary", {}), passes.get("swap", {}), judged["primary"]
        )
    return out
