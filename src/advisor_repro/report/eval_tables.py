"""The paper's evaluation tables beside this run: Table 4 (the judge), Table 5 and the
256-token table (reference metrics), the factuality audit and the training-data audit.

Each builder takes the run reader and the config and returns the report's blocks. The paper's
numbers are typed here as the paper prints them (PAPER.md); this run's numbers are formatted
the same way; ranges and verdicts come from verify (advisor_repro.report.rows).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from advisor_repro.config import Config
from advisor_repro.report.render import NotRun, Table, Text
from advisor_repro.report.rows import (
    Reader,
    Row,
    Verdicts,
    at,
    count_of,
    delta_ci,
    mean_sd,
    num,
    pct,
    table,
)

if TYPE_CHECKING:  # the audits' records, for their annotations only (no import at run time)
    from advisor_repro.audits.factuality import AnswerTruth
    from advisor_repro.audits.training_data import SampleTruth

PAPER_JUDGE = "anthropic"  # one Claude Sonnet-family judge
PAPER_CAPS = (256, 512)
# metric key, label, decimals, (paper base, FT, delta [CI]) per paper cap
METRICS = {
    256: (("bertscore_f1", "BERTScore F1", 4, ("0.0948", "0.1581", "+0.0634 [+0.0477, +0.0774]")),
          ("rouge_l_f1", "ROUGE-L F1", 4, ("0.1774", "0.1970", "+0.0196 [+0.0112, +0.0282]")),
          ("sacrebleu", "SacreBLEU", 2, ("2.60", "4.09", "+1.49"))),
    512: (("bertscore_f1", "BERTScore F1", 4, ("0.0981", "0.1611", "+0.0631 [+0.0473, +0.0785]")),
          ("rouge_l_f1", "ROUGE-L F1", 4, ("0.1937", "0.2125", "+0.0188 [+0.0098, +0.0284]")),
          ("sacrebleu", "SacreBLEU", 2, ("5.71", "9.05", "+3.34"))),
}  # fmt: skip
TRUNCATED = {256: ("96%", "96%"), 512: ("24%", "20%")}
PAPER_CLAIMS = ("Harvard Medical School requires the GRE; Medicare after six months; a "
                "Bachelor of Medicine at Stanford; Bangladesh scholarships for Brazilians")


def judge_note(cfg: Config, summary: Any) -> str:
    """Why this run's judge numbers cannot be the paper's, or "" when they can."""
    backend = cfg.judge.backend
    if backend == "replay" or (backend == PAPER_JUDGE and "claude" in cfg.judge.model.lower()):
        return ""
    model = at(summary, "judge.model") or cfg.judge.model or "the generation base"
    return f"judge backend differs from the paper's: {backend} {model}, not a Claude Sonnet"


# ---- Table 4: the judge --------------------------------------------------------------------
def judge_rows(summary: Any, cfg: Config) -> list[Row]:
    p = at(summary, "primary") or {}
    why = ("judge (judge/summary.json absent)" if not summary else
           f"no usable verdict ({p.get('n_scored', 0)} of {p.get('n_judged', 0)} scored: "
           "unparseable replies have no scores)")  # fmt: skip
    note = judge_note(cfg, summary)
    rows = []
    for key, label, paper in (("domain", "domain accuracy", ("2.14 ± 0.53", "1.74 ± 0.69",
                                                             "-0.40 [-0.62, -0.18]")),
                              ("help", "helpfulness", ("2.14 ± 0.49", "1.82 ± 0.59",
                                                       "-0.32 [-0.52, -0.12]"))):  # fmt: skip
        s = at(p, f"scores.{key}") or {}
        ci = s.get("ci95") or [None, None]
        stem = f"judge.{key}"
        rows += [
            Row(f"{label}, base", paper[0], mean_sd(s.get("base")),
                (("mean", f"{stem}.base.mean"), ("sd", f"{stem}.base.sd")), why, note),
            Row(f"{label}, FT", paper[1], mean_sd(s.get("ft")),
                (("mean", f"{stem}.ft.mean"), ("sd", f"{stem}.ft.sd")), why, note),
            Row(f"{label}, FT - base [95% CI]", paper[2], delta_ci(s.get("delta"), *ci, 2),
                (("delta", f"{stem}.delta"), ("low", f"{stem}.ci_low"),
                 ("high", f"{stem}.ci_high")), why, note),
        ]  # fmt: skip
    counts, n = at(p, "preference.counts") or {}, at(p, "n_judged")
    rows += [
        Row("preferred: base", "23/50 (46%)", count_of(counts.get("base"), n),
            (("count", "judge.preference.base"), ("vs FT", "judge.preference.base_over_ft")),
            why, note),
        Row("preferred: FT", "9/50 (18%)", count_of(counts.get("ft"), n),
            (("count", "judge.preference.ft"),), why, note),
        Row("ties", "18/50 (36%)", count_of(counts.get("tie"), n),
            (("count", "judge.preference.tie"),), why, note),
    ]  # fmt: skip
    sm = at(p, "tests.help_winner_x_preference.stuart_maxwell_shifted") or {}
    test = (f"chi2({sm['df']}) = {sm['statistic']:.1f}, p = {sm['p']:.4f}"
            if {"df", "statistic", "p"} <= set(sm) else None)  # fmt: skip
    rows.append(Row("McNemar-Bowker, 3-way preference", "chi2(2) = 9.3, p = 0.0095", test,
                    (("chi2", "judge.preference_test_chi2"), ("p", "judge.preference_test_p")),
                    why, note))  # fmt: skip
    return rows


def judge_table(get: Reader, cfg: Config, verdicts: Verdicts) -> list[Any]:
    summary = get("judge/summary.json")
    n = at(summary, "primary.n_judged")
    head = Text(
        "Table 4, blind LLM judge (n = 50 in the paper; this run: "
        f"{n if n is not None else 'not run'}, at cap {cfg.judge.cap}). Means ± population SD; "
        "deltas FT - base with the bootstrap 95% CI. The 3-way test the paper names "
        "McNemar-Bowker is, as its released code computes it, a shifted Stuart-Maxwell "
        "statistic (deviations: judge-preference-test)."
    )
    return [head, table(judge_rows(summary, cfg), verdicts, "judge")]


# ---- Table 5 and the 256-token table: reference metrics ------------------------------------
def model_words(name: Any) -> str:
    """A model as a reader knows it: the profile's "random:minilm" is a MiniLM-shaped model
    with random weights (the rehearsal's stand-in where the hub cannot be reached)."""
    if isinstance(name, str) and name.startswith("random:"):
        return f"a {name.removeprefix('random:')}-shaped model with random weights"
    return str(name) if name else "not recorded"


def bertscore_note(cfg: Config, summary: Any) -> str:
    model = at(summary, "bertscore.model") or cfg.metrics.bertscore_model
    rescaled = at(summary, "bertscore.rescale_with_baseline")
    if model == "roberta-large" and rescaled is not False:
        return ""
    return f"BERTScore model differs from the paper's roberta-large: {model_words(model)}" + (
        ", not rescaled" if rescaled is False else ""
    )


def metric_rows(summary: Any, paper_cap: int, cap: int | None, cfg: Config) -> list[Row]:
    block = at(summary, str(cap)) if cap is not None else None
    caps = summary_caps(summary)
    why = ("metrics (metrics/summary.json absent)" if not summary
           else f"this run has no {paper_cap}-token metrics (caps {caps})")  # fmt: skip
    rows = []
    other = (f"the {cfg.model.source} model's answers, not Mistral-7B's"
             if cfg.model.source != "hub" and at(summary, "origin") != "release" else "")
    for key, label, places, paper in METRICS[paper_cap]:
        m = at(block, key) or {}
        bert = bertscore_note(cfg, summary) if key == "bertscore_f1" else ""
        note = "; ".join(n for n in (other, bert) if n)
        stem = f"metrics.{paper_cap}.{key}"
        rows += [
            Row(f"{label}, base", paper[0], num(m.get("base"), places),
                (("", f"{stem}.base"),), why, note),
            Row(f"{label}, FT", paper[1], num(m.get("ft"), places), (("", f"{stem}.ft"),),
                why, note),
            Row(f"{label}, FT - base" + (" [95% CI]" if key != "sacrebleu" else ""), paper[2],
                delta_ci(m.get("delta"), m.get("ci_low"), m.get("ci_high"), places),
                (("delta", f"{stem}.delta"), ("low", f"{stem}.ci_low"),
                 ("high", f"{stem}.ci_high")), why, note),
        ]  # fmt: skip
    trunc = at(block, "truncation_rate") or {}
    for model, paper in zip(("base", "ft"), TRUNCATED[paper_cap], strict=True):
        check = (("", f"generate.truncated_{model}_{paper_cap}"),)
        rows.append(Row(f"truncated at the cap, {'FT' if model == 'ft' else 'base'}", paper,
                        pct(trunc.get(model), 0), check,
                        why if block is None else "no truncation rate (outputs not released)",
                        other))
    return rows


def summary_caps(summary: Any) -> list[int]:
    """The caps metrics/summary.json holds: its `caps` list, else its per-cap blocks (one
    source: a block present is never reported as missing)."""
    listed = at(summary, "caps") or [k for k in (summary or {}) if str(k).isdigit()]
    return sorted(int(c) for c in listed)


def run_cap(summary: Any, cfg: Config, paper_cap: int) -> int | None:
    """This run's cap that stands for the paper's: the same number, else the profile's cap in
    the same position (the smoke profile's 48 / 96 for 256 / 512)."""
    caps = summary_caps(summary)
    if paper_cap in caps:
        return paper_cap
    i = PAPER_CAPS.index(paper_cap)
    own = sorted(cfg.generate.caps)
    return own[i] if i < len(own) and own[i] in caps and paper_cap not in own else None


def metrics_tables(get: Reader, cfg: Config, verdicts: Verdicts) -> list[Any]:
    summary = get("metrics/summary.json")
    blocks: list[Any] = []
    for paper_cap, title in ((512, "Table 5, reference metrics at 512 tokens"),
                             (256, "Reference metrics at 256 tokens (the judged outputs)")):
        cap = run_cap(summary, cfg, paper_cap)
        origin = at(summary, "origin")
        stand = f"; this run's cap {cap} stands for it" if cap not in (None, paper_cap) else ""
        src = " (from the paper's released files)" if origin == "release" else ""
        blocks += [Text(f"{title}{stand}{src}. FT - base deltas with a paired bootstrap 95% CI "
                        "(SacreBLEU is corpus-level: no CI)."),
                   table(metric_rows(summary, paper_cap, cap, cfg), verdicts,
                         "metric")]  # fmt: skip
    if summary:
        blocks.append(Text("BERTScore: " + bertscore_identity(summary)))
    return blocks


def bertscore_identity(summary: dict[str, Any]) -> str:
    """The bert_score hash with the model named instead of its folder (the hash carries the
    machine's path of the model folder)."""
    b = summary.get("bertscore") or {}
    model = b.get("model") or ""
    code = b.get("hash")
    if isinstance(code, str):
        code = re.sub(r"^.*?(?=_L\d+_)", model, code) if "/" in code.split("_L")[0] else code
    rescaled = b.get("rescale_with_baseline")
    parts = [f"model {model_words(model)}", f"layers {b.get('num_layers') or 'default'}",
             "rescaled " + ("not recorded" if rescaled is None else str(rescaled).lower()),
             f"hash {code or 'not recorded'}"]
    return ", ".join(parts)


# ---- the audits ----------------------------------------------------------------------------
def factuality_rows(judge: Any, audit: Any, cfg: Config) -> list[Row]:
    div = at(judge, "primary.divergent") or {}
    note = judge_note(cfg, judge)
    divergent = (f"{div['n']} ({div['favour_base']} favour base, {div['favour_ft']} favour FT)"
                 if {"n", "favour_base", "favour_ft"} <= set(div) else None)  # fmt: skip
    errors = at(audit, "confident_errors") or {}
    made = at(audit, "catalog_claims.made_by_claim")
    by_claim = None
    if isinstance(made, list):
        ids = sorted({f"{r.get('claim_id')} ({r.get('model')})" for r in made})
        by_claim = f"{len(made)}: " + "; ".join(ids) if ids else "0"
    abst, rates = at(audit, "abstentions") or {}, at(audit, "abstention_rates") or {}

    def frac(m: str) -> str | None:
        k, n = abst.get(m), at(rates, f"{m}.n")
        return f"{k}/{n}" if isinstance(k, int) and isinstance(n, int) else num(k, 0)

    miss = ("audit (audit/summary.json absent)" if not audit
            else "no such figure in audit/summary.json")
    return [
        Row("prompts where the judge's domain scores differ", "18 (16 favour base, 2 favour FT)",
            divergent, (("n", "judge.divergent.n"), ("base", "judge.divergent.favour_base"),
                        ("FT", "judge.divergent.favour_ft")), "judge not run", note),
        Row("confident errors, FT", "4", num(errors.get("ft"), 0),
            (("", "audit.ft_errors"), ("above base", "audit.ft_errors_above_base")), miss, note),
        Row("confident errors, base", "0", num(errors.get("base"), 0),
            (("", "audit.base_errors"),), miss, note),
        Row("catalogued errors still made, by claim", f"4 (FT): {PAPER_CLAIMS}", by_claim, (),
            miss, note),
        Row("abstentions, base", "2/50", frac("base"), (("", "audit.abstentions_base"),), miss,
            note),
        Row("abstentions, FT", "1/50", frac("ft"), (("", "audit.abstentions_ft"),), miss, note),
    ]  # fmt: skip


def rate_ci(block: Any) -> str | None:
    """'11/40 (27.5%) [16%, 43%]' from {k, n, rate, wilson95}."""
    if not isinstance(block, dict) or count_of(block.get("k"), block.get("n")) is None:
        return None
    k, n = block["k"], block["n"]
    text = f"{k}/{n} ({_pct(k / n)})"
    ci = block.get("wilson95")
    return text + (f" [{_pct(ci[0], 0)}, {_pct(ci[1], 0)}]" if ci else "")


def _pct(x: float, places: int = 1) -> str:
    return f"{100 * x:.{places}f}".removesuffix(".0") + "%"


def training_rows(audit: Any, cfg: Config) -> list[Row]:
    note = judge_note(cfg, audit)
    miss = ("audit-training (audit-training/summary.json absent)" if not audit else
            f"no usable verdict ({at(audit, 'n_ok')} of {at(audit, 'n')} judged answers "
            "usable)")  # fmt: skip
    trace = at(audit, "trace") or {}
    traced = (f"{trace['with_same_claim']} of {trace['errors']}"
              if {"with_same_claim", "errors"} <= set(trace) else None)  # fmt: skip
    seeds = at(audit, "sample.seeds")
    n = at(audit, "n")
    sample = (f"{n} ({len(seeds)} seeds of {at(audit, 'sample.per_seed')})" if seeds
              else num(n, 0))  # fmt: skip
    return [
        Row("training answers audited", "40 (2 seeds of 20)", sample,
            (("", "audit_training.n"),), miss, note),
        Row("hard errors [Wilson 95% CI]", "11/40 (27.5%) [16%, 43%]",
            rate_ci(at(audit, "hard")), (("", "audit_training.hard_rate"),), miss, note),
        Row("hard + medium errors [Wilson 95% CI]", "16/40 (40%) [26%, 55%]",
            rate_ci(at(audit, "inclusive")), (("", "audit_training.inclusive_rate"),
                                              ("≥ hard", "audit_training.inclusive_at_least_hard")),
            miss, note),
        Row("FT errors whose claim a training answer makes", "4 of 4 error classes", traced, (),
            miss, note),
    ]  # fmt: skip


def audit_tables(get: Reader, cfg: Config, verdicts: Verdicts) -> list[Any]:
    judge, audit, training = (get(f) for f in ("judge/summary.json", "audit/summary.json",
                                               "audit-training/summary.json"))  # fmt: skip
    blocks: list[Any] = [
        Text("Factuality audit: the judge's divergent prompts checked against source notes "
             "(confident errors per model), the catalogued errors, and abstentions."),
        table(factuality_rows(judge, audit, cfg), verdicts, "factuality"),
        Text("Training-data audit: training answers judged hard / medium / fine against the "
             "source notes; rates with Wilson 95% CIs."),
        table(training_rows(training, cfg), verdicts, "training data"),
    ]  # fmt: skip
    for doc, what in ((audit, "factuality audit"), (training, "training-data audit")):
        truth = at(doc, "ground_truth")
        if isinstance(truth, dict):
            blocks.append(ground_truth_table(truth, what))
    if not (audit or training):
        blocks.append(NotRun("audits (audit and audit-training)"))
    return blocks


def ground_truth_table(truth: AnswerTruth | SampleTruth, what: str) -> Table:
    """The smoke set's planted errors as ground truth: precision and recall of the audit."""
    rows = []
    for key, v in truth.items():
        if isinstance(v, dict) and ("precision" in v or "recall" in v):
            rows.append([key, num(v.get("precision"), 2) or "-", num(v.get("recall"), 2) or "-",
                         str(v.get("tp", "-")), str(v.get("fp", "-")), str(v.get("fn", "-"))])
    return Table([f"{what} vs planted errors", "precision", "recall", "tp", "fp", "fn"], rows)

