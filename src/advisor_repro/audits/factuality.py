"""The factuality audit's core: screen this run's answers for catalogued claims (MiniLM), confirm
with the judge, check both answers of every divergent prompt against the source notes, and count
confident errors per model and claim."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, NotRequired, TypedDict

from advisor_repro.audits.core import (
    AnswerVerdict,
    Catalog,
    Claim,
    Judging,
    PrecisionRecall,
    Prompt,
    Provenance,
    Rate,
    applies,
    makes_marker,
    precision_recall,
    rate,
)
from advisor_repro.config import Config
from advisor_repro.evaluation.embeddings import Embedder, best_match, sentences
from advisor_repro.judges import Question, ask_all
from advisor_repro.judges.rubric import answer_messages, claim_messages, parse_answer, parse_claim
from advisor_repro.judges.stats import deblind

MODELS = ("base", "ft")
Answers = dict[tuple[str, str], str]  # (sample_id, model) -> the answer's text at judge.cap


class ScreenRow(TypedDict):
    """One (answer, applicable claim) of the screen: audit/trace.jsonl."""

    sample_id: int | str
    dataset_index: int
    model: str
    claim_id: str
    sentence: str  # the answer's sentence closest to the claim
    similarity_claim: float
    similarity_fact: float
    candidate: bool  # goes to the judge for confirmation
    passes_threshold: bool
    marker_present: bool | None  # smoke: the planted wrong value is in the answer


class ClaimFinding(TypedDict):
    """A catalogued claim looked for in one answer, and who decided (findings.jsonl)."""

    kind: str  # "catalog_claim"
    sample_id: int | str
    dataset_index: int
    model: str
    claim_id: str
    similarity_claim: float
    sentence: str
    severity: str
    error_class: str
    makes_claim: bool
    decided_by: str  # judge | screen
    judge_says: NotRequired[dict[str, bool | str]]  # the parsed confirmation
    status: NotRequired[str]  # the judge's reply bookkeeping, where it was asked
    attempts: NotRequired[int]
    cache_key: NotRequired[str]
    errors: NotRequired[list[str]]
    raw: NotRequired[str]


class DivergentFinding(AnswerVerdict):
    """One answer of a divergent prompt, checked against the source notes."""

    kind: str  # "divergent_check"
    sample_id: int | str
    model: str
    domain_favours: str  # the model the judge's domain scores favour


class AbstentionFinding(TypedDict):
    kind: str  # "abstention"
    sample_id: int | str
    model: str


Finding = ClaimFinding | DivergentFinding | AbstentionFinding


class CatalogInfo(TypedDict):
    name: str
    sha256: str
    claims: int
    training_claims: int
    notes: int


class MadeClaim(TypedDict):
    claim_id: str
    sample_id: int | str
    model: str
    severity: str
    decided_by: str


class ClaimCounts(TypedDict):
    screened: int
    candidates: int
    judge_decided: int
    screen_decided: int
    made: dict[str, int]  # model -> claims made
    made_by_claim: list[MadeClaim]


class DivergentCounts(TypedDict):
    n_prompts: int
    medium_errors: dict[str, int]  # model -> count, as the three below
    judge_abstained: dict[str, int]
    not_ok: dict[str, int]


class AnswerTruth(TypedDict):
    """Smoke: the audit and the screen alone against the planted markers, per answer."""

    unit: str
    answers: int
    with_error: int
    audit: PrecisionRecall
    screen_only: PrecisionRecall


class AnswersUsed(TypedDict):
    prompts: int
    cap: int


class PaperFigures(TypedDict):
    divergent_prompts: int
    confident_errors: dict[str, int]
    abstentions: dict[str, str]


PAPER: PaperFigures = {"divergent_prompts": 18, "confident_errors": {"base": 0, "ft": 4},
                       "abstentions": {"base": "2/50", "ft": "1/50"}}
ABSTENTION_RULE = "the answer's first 300 characters hold a catalog phrase"


@dataclass
class FactualitySummary:
    """audit/summary.json: counts per model and claim, rates with Wilson intervals, and (smoke)
    precision and recall against the planted markers."""

    catalog: CatalogInfo
    catalog_claims: ClaimCounts
    # (b): hard errors on the divergent prompts, the paper's "4 fine-tuned, 0 base"
    confident_errors: dict[str, int]
    divergent: DivergentCounts
    abstentions: dict[str, int]
    abstention_rates: dict[str, Rate]
    answers: AnswersUsed
    provenance: Provenance  # judge, calls, asking, embedding: top-level keys in the JSON
    ground_truth: AnswerTruth | None = None
    abstention_rule: str = ABSTENTION_RULE
    paper: PaperFigures = field(default_factory=lambda: PAPER)

    def to_json(self) -> dict[str, Any]:
        """audit/summary.json: the fields, with the provenance's keys at the top level and
        ground_truth only where there is one (write_json sorts the keys)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("provenance", "ground_truth")}
        out.update(self.provenance)
        if self.ground_truth is not None:
            out["ground_truth"] = self.ground_truth
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FactualitySummary:
        d = dict(d)
        prov: Provenance = {"judge": d.pop("judge"), "calls": d.pop("calls"),
                            "asking": d.pop("asking"), "embedding": d.pop("embedding")}
        return cls(**d, provenance=prov)


def screen(
    emb: Embedder, catalog: Catalog, prompts: list[Prompt], answers: Answers, threshold: float,
) -> list[ScreenRow]:
    """One row per (answer, applicable claim): best sentence, its cosine to the claim and
    to the fact, whether it is a candidate for confirmation, and (smoke) the marker truth."""
    claims = catalog.claims
    claim_vecs = emb.encode([c.claim for c in claims])
    fact_vecs = emb.encode([c.fact for c in claims])
    keys = [(p, m, answers[(str(p["sample_id"]), m)]) for p in prompts for m in MODELS]
    split = [sentences(text) or [text] for _, _, text in keys]
    flat = emb.encode([s for sents in split for s in sents])  # one pass over all answers
    rows: list[ScreenRow] = []
    at = 0
    for (p, model, text), sents in zip(keys, split, strict=True):
        sent_vecs, at = flat[at : at + len(sents)], at + len(sents)
        for c, cv, fv in zip(claims, claim_vecs, fact_vecs, strict=True):
            if not applies(c, p["dataset_index"]):
                continue
            sim, idx = best_match(cv, sent_vecs)
            fact_sim, _ = best_match(fv, sent_vecs)
            rows.append({
                "sample_id": p["sample_id"], "dataset_index": p["dataset_index"],
                "model": model, "claim_id": c.id, "sentence": sents[idx] if idx >= 0 else "",
                "similarity_claim": round(sim, 4), "similarity_fact": round(fact_sim, 4),
                "candidate": c.dataset_index is not None
                or (sim >= threshold and sim >= fact_sim),
                "passes_threshold": sim >= threshold,
                "marker_present": makes_marker(text, c.marker) if c.marker else None,
            })
    return rows


def confirm(
    judging: Judging, screened: list[ScreenRow], claims: dict[str, Claim],
    prompts: dict[str, Prompt], answers: Answers, limit: int,
) -> list[ClaimFinding]:
    """Findings for the candidates: the judge's confirmation where asked and usable, else the
    screen's decision (similarity >= threshold)."""
    cands = sorted((r for r in screened if r["candidate"]),
                   key=lambda r: (claims[r["claim_id"]].dataset_index is None,
                                  -r["similarity_claim"]))
    limited = cands if not limit else cands[:limit]
    replies = ask_all(judging.judge, [Question(
        claim_messages(prompts[str(r["sample_id"])]["prompt"],
                       answers[(str(r["sample_id"]), r["model"])], claims[r["claim_id"]].claim,
                       claims[r["claim_id"]].fact, claims[r["claim_id"]].source()),
        parse_claim, f"claim:{r['sample_id']}:{r['model']}:{r['claim_id']}") for r in limited],
        judging.parse_retries)  # independent questions: batched where the backend can
    out: list[ClaimFinding] = []
    for n, r in enumerate(cands):
        c = claims[r["claim_id"]]
        reply = replies[n] if n < len(replies) else None
        row: ClaimFinding = {
            "kind": "catalog_claim", "sample_id": r["sample_id"],
            "dataset_index": r["dataset_index"], "model": r["model"], "claim_id": r["claim_id"],
            "similarity_claim": r["similarity_claim"], "sentence": r["sentence"],
            "severity": c.severity, "error_class": c.error_class,
            **(reply.record() if reply is not None else {}),
            "makes_claim": r["passes_threshold"], "decided_by": "screen",
        }  # fmt: skip
        if reply is not None and reply.status == "ok":
            row.update(judge_says=reply.parsed, makes_claim=reply.parsed["asserts_claim"],
                       decided_by="judge")
        out.append(row)
    return out


def divergent_checks(
    judging: Judging, catalog: Catalog, prompts: dict[str, Prompt], answers: Answers,
    verdicts: list[dict[str, Any]], mapping: dict[str, str], top_k: int,
) -> list[DivergentFinding]:
    """Both answers of every divergent prompt, checked against the nearest source notes.
    `verdicts`: judge/verdicts.jsonl's rows; `mapping`: sample_id -> the base model's slot."""
    emb = judging.emb
    note_vecs = emb.encode(catalog.notes)
    plan, questions = [], []
    for v in verdicts:
        if v.get("pass", "primary") != "primary" or v.get("status", "ok") != "ok":
            continue
        sid = str(v["sample_id"])
        d = deblind(v, v.get("base_slot") or mapping[sid])
        if d["base_domain"] == d["ft_domain"] or sid not in prompts:
            continue
        favours = "base" if d["base_domain"] > d["ft_domain"] else "ft"
        for model in MODELS:
            text = answers[(sid, model)]
            sims = note_vecs @ emb.encode([text])[0] if catalog.notes else []
            order = sorted(range(len(catalog.notes)), key=lambda i: -float(sims[i]))[:top_k]
            plan.append((v["sample_id"], model, favours))
            questions.append(Question(answer_messages(prompts[sid]["prompt"], text,
                                                      [catalog.notes[i] for i in order]),
                                      parse_answer, f"answer:eval:{sid}:{model}"))
    replies = ask_all(judging.judge, questions, judging.parse_retries)
    return [{"kind": "divergent_check", "sample_id": sample_id, "model": model,
             "domain_favours": favours, **(reply.parsed or {}), **reply.record()}
            for (sample_id, model, favours), reply in zip(plan, replies, strict=True)]


def summarize(
    screened: list[ScreenRow], confirmed: list[ClaimFinding], divergent: list[DivergentFinding],
    abst: dict[str, list[bool]], catalog: Catalog, used: tuple[Provenance, AnswersUsed],
) -> FactualitySummary:
    """The counts of audit/summary.json; `used`: who judged and embedded, and which answers."""
    made = [r for r in confirmed if r["makes_claim"]]
    div_prompts = {r["sample_id"] for r in divergent}

    def div_count(model: str, pred: Callable[[DivergentFinding], bool]) -> int:
        return sum(1 for r in divergent if r["model"] == model and pred(r))

    provenance, answers = used
    out = FactualitySummary(
        catalog={"name": catalog.name, "sha256": catalog.sha256, "claims": len(catalog.claims),
                 "training_claims": len(catalog.training_claims), "notes": len(catalog.notes)},
        catalog_claims={
            "screened": len(screened),
            "candidates": len(confirmed),
            "judge_decided": sum(r["decided_by"] == "judge" for r in confirmed),
            "screen_decided": sum(r["decided_by"] == "screen" for r in confirmed),
            "made": {m: sum(r["model"] == m for r in made) for m in MODELS},
            "made_by_claim": [{"claim_id": r["claim_id"], "sample_id": r["sample_id"],
                               "model": r["model"], "severity": r["severity"],
                               "decided_by": r["decided_by"]} for r in made],
        },
        confident_errors={m: div_count(m, lambda r: r.get("verdict") == "hard")
                          for m in MODELS},
        divergent={
            "n_prompts": len(div_prompts),
            "medium_errors": {m: div_count(m, lambda r: r.get("verdict") == "medium")
                              for m in MODELS},
            "judge_abstained": {m: div_count(m, lambda r: r.get("abstained") is True)
                                for m in MODELS},
            "not_ok": {m: div_count(m, lambda r: r["status"] != "ok") for m in MODELS},
        },
        abstentions={m: sum(abst[m]) for m in MODELS},
        abstention_rates={m: rate(sum(abst[m]), len(abst[m])) for m in MODELS},
        answers=answers,
        provenance=provenance,
    )
    truth_rows = [r for r in screened if r["marker_present"] is not None]
    if truth_rows:  # smoke: markers are ground truth, per answer
        keys = sorted({(str(r["sample_id"]), r["model"]) for r in truth_rows})
        truth = {k: False for k in keys}
        for r in truth_rows:
            truth[(str(r["sample_id"]), r["model"])] |= bool(r["marker_present"])
        flagged = {(str(r["sample_id"]), r["model"]) for r in made}
        passed = {(str(r["sample_id"]), r["model"]) for r in screened if r["passes_threshold"]}
        t = [truth[k] for k in keys]
        out.ground_truth = {
            "unit": "answer (any planted wrong value present)",
            "answers": len(keys), "with_error": sum(t),
            "audit": precision_recall([k in flagged for k in keys], t),
            "screen_only": precision_recall([k in passed for k in keys], t),
        }
    return out


def judge_calls(cfg: Config) -> int:
    """About how many judge calls the audit makes (for estimates): confirmations + probes."""
    return (cfg.audit.confirm_limit or 8) + (8 if cfg.model.source == "smoke" else 36)
