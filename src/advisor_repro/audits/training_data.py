"""The training-data audit's core: judge a seeded sample of training answers against the source
notes (hard / medium / fine, Wilson CIs), trace each fine-tuned error to its nearest training
answers, and score both against the smoke world's planted labels."""

from __future__ import annotations

from typing import Any

from advisor_repro.audits.core import (
    Catalog,
    Claim,
    answer_pool,
    precision_recall,
    rate,
)
from advisor_repro.config import Config
from advisor_repro.evaluation.embeddings import Embedder, sentences
from advisor_repro.judges import CachedJudge, Question, ask_all
from advisor_repro.judges.rubric import answer_messages, claim_messages, parse_answer, parse_claim

Answer = tuple[int, int]  # (conversation index, turn index) in the training split



def judge_sample(
    judge: CachedJudge, emb: Embedder, catalog: Catalog, train: list[dict[str, Any]],
    sample: list[dict[str, Any]], top_k: int, parse_retries: int,
) -> list[dict[str, Any]]:
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
    replies = ask_all(judge, questions, parse_retries)  # independent: batched where possible
    return [{"kind": "training_answer", **s, **(reply.parsed or {}), **reply.record()}
            for s, reply in zip(sample, replies, strict=True)]


def prevalence(rows: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    def rates(part: list[dict[str, Any]]) -> dict[str, Any]:
        ok = [r for r in part if r["status"] == "ok"]
        hard = sum(r["verdict"] == "hard" for r in ok)
        medium = sum(r["verdict"] == "medium" for r in ok)
        return {"n": len(part), "n_ok": len(ok), "not_ok": len(part) - len(ok),
                "hard": rate(hard, len(ok)), "inclusive": rate(hard + medium, len(ok))}

    return {**rates(rows), "by_seed": {str(s): rates([r for r in rows if r["seed"] == s])
                                       for s in seeds}}


def ground_truth(rows: list[dict[str, Any]], labels: dict[Answer, Any]) -> dict[str, Any]:
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


def errors_to_trace(catalog: Catalog, findings: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The catalog's model errors tied to a prompt and their training counterparts, then the
    fine-tuned errors this run's audit found (claims made, confident errors with a claim)."""
    claims = {c.id: c for c in catalog.claims}
    out: list[dict[str, str]] = []

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
    judge: CachedJudge, emb: Embedder, train: list[dict[str, Any]], errors: list[dict[str, str]],
    labels: dict[Answer, Any] | None, top_k: int, threshold: float, limit: int,
    parse_retries: int,
) -> list[dict[str, Any]]:
    import torch

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
    rows, asks = [], []  # asks: (row index, question) of the rows the judge confirms
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
            row = {"error_id": e["error_id"], "error_claim": e["claim"], "source": e["source"],
                   "rank": rank, "index": i, "turn": t, "similarity": round(float(best[j]), 4),
                   "similarity_fact": round(fact_sim, 4), "sentence": sents[top]}
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
    replies = dict(zip([k for k, _ in asks],
                       ask_all(judge, [q for _, q in asks], parse_retries), strict=True))
    for k, row in enumerate(rows):
        reply = replies.get(k)
        if reply is not None:
            row.update(reply.record())
        if reply is not None and reply.status == "ok":
            row.update(same_claim=reply.parsed["asserts_claim"], decided_by="judge")
        else:
            # the screen: close to the claim, and closer to it than to the true fact
            row.update(same_claim=row["similarity"] >= threshold
                       and row["similarity"] > row["similarity_fact"], decided_by="screen")
    return rows


def judge_calls(cfg: Config) -> int:
    """About how many judge calls the training-data audit makes (for estimates)."""
    return cfg.audit.training_sample + (cfg.audit.confirm_limit or 8 * cfg.audit.trace_top_k)
