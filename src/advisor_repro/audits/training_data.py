"""The training-data audit's core: judge a seeded sample of training answers against the source
notes (hard / medium / fine, Wilson CIs), trace each fine-tuned error to its nearest training
answers, and score both against the smoke world's planted labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NotRequired, TypedDict

from advisor_repro.audits.core import (
    AnswerVerdict,
    Catalog,
    Claim,
    Draw,
    Judging,
    PrecisionRecall,
    Provenance,
    Rate,
    answer_pool,
    precision_recall,
    rate,
)
from advisor_repro.audits.factuality import Finding
from advisor_repro.config import Config
from advisor_repro.evaluation.embeddings import sentences
from advisor_repro.judges import Question, ask_all
from advisor_repro.judges.rubric import answer_messages, claim_messages, parse_answer, parse_claim
from advisor_repro.smokedata.generate import PlantedError, Record

Answer = tuple[int, int]  # (conversation index, turn index) in the training split
Labels = dict[Answer, PlantedError]  # smoke: the planted wrong values, by answer


class TrainingVerdict(AnswerVerdict):
    """One drawn training answer and the judge's verdict on it (audit-training/findings.jsonl)."""

    kind: str  # "training_answer"
    seed: int
    index: int
    turn: int
    planted: NotRequired[PlantedError | None]  # smoke: the planted label of this answer


class Counts(TypedDict):
    n: int
    n_ok: int  # verdicts that are usable JSON: the rates are over these
    not_ok: int
    hard: Rate
    inclusive: Rate  # hard or medium


class Prevalence(Counts):
    by_seed: dict[str, Counts]


class SampleTruth(TypedDict):
    """Smoke: the sample's planted rate and the audit against the planted labels."""

    unit: str
    planted: Rate
    audit_hard: PrecisionRecall
    audit_inclusive: PrecisionRecall


class TraceError(TypedDict):
    """A fine-tuned error to trace to the training answers."""

    error_id: str
    claim: str
    source: str  # catalog | audit
    fact: str
    marker: str  # smoke: the planted wrong value that proves the claim


class TraceRow(TypedDict):
    """One of an error's nearest training answers (audit-training/trace.jsonl)."""

    error_id: str
    error_claim: str
    source: str
    rank: int
    index: int
    turn: int
    similarity: float
    similarity_fact: float
    sentence: str
    same_claim: bool
    decided_by: str  # judge | screen
    planted_same_claim: NotRequired[bool]
    status: NotRequired[str]
    attempts: NotRequired[int]
    cache_key: NotRequired[str]
    errors: NotRequired[list[str]]
    raw: NotRequired[str]


class SampleInfo(TypedDict):
    n: int
    seeds: list[int]
    per_seed: int
    rule: str
    pool: int


class TraceCounts(TypedDict):
    errors: int
    with_same_claim: int
    rows: int
    ground_truth: NotRequired[PrecisionRecall]


class TrainingAuditJson(Prevalence, Provenance):
    sample: SampleInfo
    counting_rule: str
    trace: TraceCounts
    paper: dict[str, str]
    catalog: dict[str, str]  # name, sha256
    ground_truth: NotRequired[SampleTruth]


SAMPLE_RULE = "random.Random(seed).sample of the answers not drawn by an earlier seed"
COUNTING_RULE = "rates are over verdicts that are usable JSON (n_ok); not_ok counts the rest"
PAPER = {"hard": "11/40 = 27.5% [16%, 43%]", "inclusive": "16/40 = 40% [26%, 55%]"}


@dataclass
class TrainingAuditSummary:
    """audit-training/summary.json: prevalence with Wilson intervals (overall and per seed),
    the trace's counts, and (smoke) the audit against the planted labels."""

    sample: SampleInfo
    prevalence: Prevalence  # n, n_ok, not_ok, hard, inclusive, by_seed: top-level keys
    trace: TraceCounts
    catalog: dict[str, str]
    provenance: Provenance  # judge, calls, asking, embedding: top-level keys
    ground_truth: SampleTruth | None = None

    def to_json(self) -> TrainingAuditJson:
        out: TrainingAuditJson = {
            "sample": self.sample, **self.prevalence, "counting_rule": COUNTING_RULE,
            "trace": self.trace, "paper": PAPER, **self.provenance, "catalog": self.catalog,
        }  # fmt: skip
        if self.ground_truth is not None:
            out["ground_truth"] = self.ground_truth
        return out

    @classmethod
    def from_json(cls, d: TrainingAuditJson) -> TrainingAuditSummary:
        return cls(
            sample=d["sample"],
            prevalence={"n": d["n"], "n_ok": d["n_ok"], "not_ok": d["not_ok"], "hard": d["hard"],
                        "inclusive": d["inclusive"], "by_seed": d["by_seed"]},
            trace=d["trace"], catalog=d["catalog"],
            provenance={"judge": d["judge"], "calls": d["calls"], "asking": d["asking"],
                        "embedding": d["embedding"]},
            ground_truth=d.get("ground_truth"),
        )  # fmt: skip



def judge_sample(
    judging: Judging, catalog: Catalog, train: list[Record], sample: list[Draw], top_k: int,
) -> list[TrainingVerdict]:
    emb = judging.emb
    note_vecs = emb.encode(catalog.notes)
    texts = [train[s["index"]]["conversations"][s["turn"]]["value"] for s in sample]
    answer_vecs = emb.encode(texts)
    questions = []
    for s, text, vec in zip(sample, texts, answer_vecs, strict=True):
        question = train[s["index"]]["conversations"][s["turn"] - 1]["value"]
        sims = note_vecs @ vec if catalog.notes else []
        order = sorted(range(len(catalog.notes)), key=lambda i: -float(sims[i]))[:top_k]
        questions.append(Question(
            answer_messages(question, text, [catalog.notes[i] for i in order]), parse_answer,
            f"answer:train:{s['index']}:{s['turn']}"))
    replies = ask_all(judging.judge, questions, judging.parse_retries)  # batched where possible
    return [{"kind": "training_answer", **s, **(reply.parsed or {}), **reply.record()}
            for s, reply in zip(sample, replies, strict=True)]


def prevalence(rows: list[TrainingVerdict], seeds: list[int]) -> Prevalence:
    def rates(part: list[TrainingVerdict]) -> Counts:
        ok = [r for r in part if r["status"] == "ok"]
        hard = sum(r["verdict"] == "hard" for r in ok)
        medium = sum(r["verdict"] == "medium" for r in ok)
        return {"n": len(part), "n_ok": len(ok), "not_ok": len(part) - len(ok),
                "hard": rate(hard, len(ok)), "inclusive": rate(hard + medium, len(ok))}

    return {**rates(rows), "by_seed": {str(s): rates([r for r in rows if r["seed"] == s])
                                       for s in seeds}}


def ground_truth(rows: list[TrainingVerdict], labels: Labels) -> SampleTruth:
    truth = [(r["index"], r["turn"]) in labels for r in rows]
    ok = [(r, t) for r, t in zip(rows, truth, strict=True) if r["status"] == "ok"]
    return {
        "unit": "training answer (a planted wrong value in it)",
        "planted": rate(sum(truth), len(truth)),
        "audit_hard": precision_recall([r["verdict"] == "hard" for r, _ in ok],
                                       [t for _, t in ok]),
        "audit_inclusive": precision_recall([r["verdict"] in ("hard", "medium") for r, _ in ok],
                                            [t for _, t in ok]),
    }


def errors_to_trace(catalog: Catalog, findings: list[Finding]) -> list[TraceError]:
    """The catalog's model errors tied to a prompt and their training counterparts, then the
    fine-tuned errors this run's audit found (claims made, confident errors with a claim)."""
    claims = {c.id: c for c in catalog.claims}
    out: list[TraceError] = []

    def add(error_id: str, text: str, source: str, fact: str = "", marker: str = "") -> None:
        if text and all(e["claim"] != text for e in out):
            out.append({"error_id": error_id, "claim": text, "source": source, "fact": fact,
                        "marker": marker})

    for c in [*catalog.claims, *catalog.training_claims]:
        if c.dataset_index is not None or (c.kind == "training_error" and not c.marker):
            add(c.id, c.claim, "catalog", c.fact)
    for f in findings:
        if f.get("model") != "ft":
            continue
        if f["kind"] == "catalog_claim" and f.get("makes_claim"):
            c: Claim = claims[f["claim_id"]]
            add(c.id, c.claim, "audit", c.fact, c.marker)
        elif f["kind"] == "divergent_check" and f.get("verdict") == "hard":
            add(f"divergent:{f['sample_id']}", f.get("claim", ""), "audit")
    return out


def trace(
    judging: Judging, train: list[Record], errors: list[TraceError], labels: Labels | None,
    top_k: int, threshold: float, limit: int,
) -> list[TraceRow]:
    """For each error, its `top_k` nearest training answers by sentence similarity, and
    whether each makes the same claim: the judge for the first `limit` rows (0: all), else the
    screen (similarity >= `threshold` and above the similarity to the true fact)."""
    import torch

    emb = judging.emb
    if not errors:
        return []
    pool = answer_pool(train)
    owner: list[int] = []  # pool position of each sentence's answer
    sents: list[str] = []
    span: list[tuple[int, int]] = []  # each answer's sentences: sents[start:end]
    for j, (i, t) in enumerate(pool):
        found = sentences(train[i]["conversations"][t]["value"])
        span.append((len(sents), len(sents) + len(found)))
        owner += [j] * len(found)
        sents += found
    sent_vecs = emb.encode(sents)
    owner_t = torch.tensor(owner, dtype=torch.long)
    rows: list[TraceRow] = []
    asks: list[tuple[int, Question]] = []  # (row index, question) of the rows the judge confirms
    for e in errors:
        claim_vec, fact_vec = emb.encode([e["claim"], e["fact"] or e["claim"]])
        sims = sent_vecs @ claim_vec
        best = torch.full((len(pool),), -1.0).scatter_reduce(0, owner_t, sims, "amax")
        for rank, j in enumerate(best.argsort(descending=True)[:top_k].tolist(), start=1):
            i, t = pool[j]
            start, end = span[j]
            if end == start:
                break  # no answer left with a sentence to compare
            top = start + int(sims[start:end].argmax())
            fact_sim = float(sent_vecs[top] @ fact_vec) if e["fact"] else -1.0
            similarity = round(float(best[j]), 4)
            row: TraceRow = {
                "error_id": e["error_id"], "error_claim": e["claim"], "source": e["source"],
                "rank": rank, "index": i, "turn": t, "similarity": similarity,
                "similarity_fact": round(fact_sim, 4), "sentence": sents[top],
                # the screen: close to the claim, and closer to it than to the true fact
                "same_claim": similarity >= threshold and similarity > round(fact_sim, 4),
                "decided_by": "screen",
            }  # fmt: skip
            if not limit or len(asks) < limit:
                text = train[i]["conversations"][t]["value"]
                question = train[i]["conversations"][t - 1]["value"]
                asks.append((len(rows), Question(
                    claim_messages(question, text, e["claim"], "", "the catalog"), parse_claim,
                    f"trace:{e['error_id']}:{i}:{t}")))
            if labels is not None and e["marker"]:
                label = labels.get((i, t))
                row["planted_same_claim"] = bool(label and label["claimed"] == e["marker"])
            rows.append(row)
    replies = dict(zip([k for k, _ in asks], ask_all(judging.judge, [q for _, q in asks],
                                                      judging.parse_retries), strict=True))
    for k, row in enumerate(rows):
        reply = replies.get(k)
        if reply is not None:
            row.update(reply.record())
        if reply is not None and reply.status == "ok":
            row.update(same_claim=reply.parsed["asserts_claim"], decided_by="judge")
    return rows


def summarize(
    sample: SampleInfo, rows: list[TrainingVerdict], traced: list[TraceRow],
    errors: list[TraceError], catalog: Catalog, provenance: Provenance, labels: Labels | None,
) -> TrainingAuditSummary:
    """audit-training/summary.json from the judged sample and the trace."""
    counts: TraceCounts = {
        "errors": len(errors),
        "with_same_claim": sum(any(t["same_claim"] for t in traced
                                   if t["error_id"] == e["error_id"]) for e in errors),
        "rows": len(traced)}  # fmt: skip
    summary = TrainingAuditSummary(
        sample=sample, prevalence=prevalence(rows, sample["seeds"]), trace=counts,
        catalog={"name": catalog.name, "sha256": catalog.sha256}, provenance=provenance)
    if labels is not None:
        summary.ground_truth = ground_truth(rows, labels)
        marked = [t for t in traced if "planted_same_claim" in t]
        counts["ground_truth"] = precision_recall(
            [t["same_claim"] for t in marked], [t["planted_same_claim"] for t in marked])
    return summary


def judge_calls(cfg: Config) -> int:
    """About how many judge calls the training-data audit makes (for estimates)."""
    return cfg.audit.training_sample + (cfg.audit.confirm_limit or 8 * cfg.audit.trace_top_k)
