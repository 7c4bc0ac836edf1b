"""Stage `audit-training`: the training-data audit of PAPER.md "Audits".

Prevalence: audit.training_sample training answers, drawn in equal parts with each seed of
audit.training_seeds (never overlapping), each checked by the judge against the nearest source
notes: hard error / medium-confidence error / fine. Rates with Wilson 95% intervals, over the
verdicts the judge returned as usable JSON (the rest are counted apart). The paper: hard 11/40
= 27.5% [16, 43]; hard or medium 16/40 = 40% [26, 55].

Trace: for each fine-tuned error (the catalog's model errors and training counterparts, and
the fine-tuned errors this run's `audit` found), the nearest training answers by MiniLM
sentence similarity, and whether each makes the same claim (judge confirmation within
audit.confirm_limit, else the similarity threshold).

Smoke profile: the planted labels (data/planted_errors.jsonl) are ground truth: the summary
gives the planted rate of the sample and the audit's precision and recall against it.
"""

from __future__ import annotations

from typing import Any

from advisor_repro.audit_core import (
    Catalog,
    Claim,
    answer_pool,
    catalog_inputs,
    draw_training_sample,
    load_catalog,
    precision_recall,
    rate,
)
from advisor_repro.config import Config
from advisor_repro.embeddings import Embedder, sentences
from advisor_repro.files import read_jsonl, write_json, write_jsonl
from advisor_repro.judges import CachedJudge, ask, make_judge
from advisor_repro.judges.local import pick_device
from advisor_repro.judges.rubric import answer_messages, claim_messages, parse_answer, parse_claim
from advisor_repro.pipeline import Estimate, Stage, StageContext, StageResult
from advisor_repro.stages.judge import external_inputs as judge_external

Answer = tuple[int, int]  # (conversation index, turn index) in the training split


def planted_labels(cfg: Config, ctx: StageContext) -> dict[Answer, dict[str, Any]] | None:
    """Smoke only. Read beside data/train.jsonl, whose declared hash pins it: the labels are
    written by the same data-stage run, and the pipeline has no optional inputs."""
    path = ctx.run_dir / "data" / "planted_errors.jsonl"
    if cfg.data.source != "builtin:smoke" or not path.is_file():
        return None
    return {(r["index"], r["turn"]): r for r in read_jsonl(path) if r["split"] == "train"}


def judge_sample(
    judge: CachedJudge, emb: Embedder, catalog: Catalog, train: list[dict[str, Any]],
    sample: list[dict[str, Any]], top_k: int, parse_retries: int,
) -> list[dict[str, Any]]:
    note_vecs = emb.encode(catalog.notes)
    texts = [train[s["index"]]["conversations"][s["turn"]]["value"] for s in sample]
    answer_vecs = emb.encode(texts)
    rows = []
    for s, text, vec in zip(sample, texts, answer_vecs, strict=True):
        question = train[s["index"]]["conversations"][s["turn"] - 1]["value"]
        sims = note_vecs @ vec if catalog.notes else []
        order = sorted(range(len(catalog.notes)), key=lambda i: -float(sims[i]))[:top_k]
        reply = ask(judge, answer_messages(question, text, [catalog.notes[i] for i in order]),
                    parse_answer, f"answer:train:{s['index']}:{s['turn']}", parse_retries)
        rows.append({"kind": "training_answer", **s, **(reply.parsed or {}), **reply.record()})
    return rows


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
    rows, asked = [], 0
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
            reply = None
            if not limit or asked < limit:
                asked += 1
                text = train[i]["conversations"][t]["value"]
                question = train[i]["conversations"][t - 1]["value"]
                reply = ask(judge, claim_messages(question, text, e["claim"], "", "the catalog"),
                            parse_claim, f"trace:{e['error_id']}:{i}:{t}", parse_retries)
                row.update(reply.record())
            if reply is not None and reply.status == "ok":
                row.update(same_claim=reply.parsed["asserts_claim"], decided_by="judge")
            else:
                # the screen: close to the claim, and closer to it than to the true fact
                row.update(same_claim=row["similarity"] >= threshold
                           and row["similarity"] > row["similarity_fact"], decided_by="screen")
            if labels is not None and e["marker"]:
                label = labels.get((i, t))
                row["planted_same_claim"] = bool(label and label["claimed"] == e["marker"])
            rows.append(row)
    return rows


def run(cfg: Config, ctx: StageContext) -> StageResult:
    au = cfg.audit
    train = read_jsonl(ctx.input("data/train.jsonl"))
    findings = read_jsonl(ctx.input("audit/findings.jsonl"))
    catalog = load_catalog(au.catalog)
    labels = planted_labels(cfg, ctx)
    sample = draw_training_sample(train, au.training_sample, au.training_seeds)
    emb = Embedder(au.embedding_model, pick_device(cfg.hardware.device))
    judge = make_judge(cfg, ctx.out / "cache")
    try:
        rows = judge_sample(judge, emb, catalog, train, sample, au.notes_top_k,
                            cfg.judge.parse_retries)
        errors = errors_to_trace(catalog, findings)
        traced = trace(judge, emb, train, errors, labels, au.trace_top_k, au.claim_similarity,
                       au.confirm_limit, cfg.judge.parse_retries)
    finally:
        judge.close()
    if labels is not None:
        for r in rows:
            r["planted"] = labels.get((r["index"], r["turn"]))
    summary: dict[str, Any] = {
        "sample": {"n": len(sample), "seeds": au.training_seeds,
                   "per_seed": au.training_sample // len(au.training_seeds),
                   "rule": "random.Random(seed).sample of the answers not drawn by an earlier "
                           "seed", "pool": len(answer_pool(train))},
        **prevalence(rows, au.training_seeds),
        "counting_rule": "rates are over verdicts that are usable JSON (n_ok); not_ok counts "
                         "the rest",
        "trace": {"errors": len(errors),
                  "with_same_claim": sum(any(t["same_claim"] for t in traced
                                             if t["error_id"] == e["error_id"])
                                         for e in errors),
                  "rows": len(traced)},
        "paper": {"hard": "11/40 = 27.5% [16%, 43%]", "inclusive": "16/40 = 40% [26%, 55%]"},
        "judge": judge.identity, "calls": {"paid": judge.calls, "cached": judge.hits},
        "catalog": {"name": catalog.name, "sha256": catalog.sha256},
        "embedding": {"model": emb.name, "revision": emb.revision},
    }
    if labels is not None:
        summary["ground_truth"] = ground_truth(rows, labels)
        marked = [t for t in traced if "planted_same_claim" in t]
        summary["trace"]["ground_truth"] = precision_recall(
            [t["same_claim"] for t in marked], [t["planted_same_claim"] for t in marked])
    write_jsonl(ctx.out / "findings.jsonl", rows)
    write_jsonl(ctx.out / "trace.jsonl", traced)
    write_json(ctx.out / "summary.json", summary)
    figures = {"n": len(rows), "n_ok": summary["n_ok"], "hard": summary["hard"]["k"],
               "inclusive": summary["inclusive"]["k"], "traced": len(errors)}
    if labels is not None:
        figures["planted"] = summary["ground_truth"]["planted"]["k"]
    return StageResult(figures=figures)


def external_inputs(cfg: Config) -> dict[str, str]:
    """The factuality catalog and, for the replay backend, the replayed file."""
    return {**catalog_inputs(cfg.audit.catalog), **judge_external(cfg)}


def judge_calls(cfg: Config) -> int:
    """About how many judge calls the training-data audit makes (for estimates)."""
    return cfg.audit.training_sample + (cfg.audit.confirm_limit or 8 * cfg.audit.trace_top_k)


def estimate(cfg: Config) -> Estimate:
    smoke = cfg.model.source == "smoke"
    calls = judge_calls(cfg)
    return Estimate(seconds=30 + calls * (4.0 if smoke else 8.0), disk_bytes=2**20,
                    vram_gib=10.5 if cfg.judge.backend == "local" and not smoke else 0.0)


STAGE = Stage(
    name="audit-training",
    summary="training-data audit: error prevalence (Wilson CIs) and traces of fine-tuned errors",
    run=run,
    needs=("data/train.jsonl", "audit/findings.jsonl"),
    config=("judge", "audit"),
    external=external_inputs,
    estimate=estimate,
)
