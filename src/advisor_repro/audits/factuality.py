"""The factuality audit's core: screen this run's answers for catalogued claims (MiniLM), confirm
with the judge, check both answers of every divergent prompt against the source notes, and count
confident errors per model and claim."""

from __future__ import annotations

from typing import Any

from advisor_repro.audits.core import (
    Catalog,
    Claim,
    applies,
    makes_marker,
    precision_recall,
    rate,
)
from advisor_repro.config import Config
from advisor_repro.evaluation.embeddings import Embedder, best_match, sentences
from advisor_repro.judges import CachedJudge, Question, ask_all
from advisor_repro.judges.rubric import answer_messages, claim_messages, parse_answer, parse_claim
from advisor_repro.judges.stats import deblind

MODELS = ("base", "ft")


def screen(
    emb: Embedder, catalog: Catalog, prompts: list[dict[str, Any]],
    answers: dict[tuple[str, str], str], threshold: float,
) -> list[dict[str, Any]]:
    """One row per (answer, applicable claim): best sentence, its cosine to the claim and
    to the fact, whether it is a candidate for confirmation, and (smoke) the marker truth."""
    claims = catalog.claims
    claim_vecs = emb.encode([c.claim for c in claims])
    fact_vecs = emb.encode([c.fact for c in claims])
    keys = [(p, m, answers[(str(p["sample_id"]), m)]) for p in prompts for m in MODELS]
    split = [sentences(text) or [text] for _, _, text in keys]
    flat = emb.encode([s for sents in split for s in sents])  # one pass over all answers
    rows, at = [], 0
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
    judge: CachedJudge, screened: list[dict[str, Any]], claims: dict[str, Claim],
    prompts: dict[str, dict[str, Any]], answers: dict[tuple[str, str], str],
    limit: int, parse_retries: int,
) -> list[dict[str, Any]]:
    """Findings for the candidates: the judge's confirmation where asked and usable, else the
    screen's decision (similarity >= threshold)."""
    cands = sorted((r for r in screened if r["candidate"]),
                   key=lambda r: (claims[r["claim_id"]].dataset_index is None,
                                  -r["similarity_claim"]))
    limited = cands if not limit else cands[:limit]
    replies = ask_all(judge, [Question(
        claim_messages(prompts[str(r["sample_id"])]["prompt"],
                       answers[(str(r["sample_id"]), r["model"])], claims[r["claim_id"]].claim,
                       claims[r["claim_id"]].fact, claims[r["claim_id"]].source()),
        parse_claim, f"claim:{r['sample_id']}:{r['model']}:{r['claim_id']}") for r in limited],
        parse_retries)  # independent questions: batched where the backend can
    out = []
    for n, r in enumerate(cands):
        c = claims[r["claim_id"]]
        row = {"kind": "catalog_claim", **{k: r[k] for k in (
            "sample_id", "dataset_index", "model", "claim_id", "similarity_claim", "sentence")},
            "severity": c.severity, "error_class": c.error_class}
        reply = replies[n] if n < len(replies) else None
        if reply is not None:
            row.update(reply.record())
        if reply is not None and reply.status == "ok":
            row.update(judge_says=reply.parsed, makes_claim=reply.parsed["asserts_claim"],
                       decided_by="judge")
        else:
            row.update(makes_claim=r["passes_threshold"], decided_by="screen")
        out.append(row)
    return out


def divergent_checks(
    judge: CachedJudge, emb: Embedder, catalog: Catalog, prompts: dict[str, dict[str, Any]],
    answers: dict[tuple[str, str], str], verdicts: list[dict[str, Any]],
    mapping: dict[str, str], top_k: int, parse_retries: int,
) -> list[dict[str, Any]]:
    """Both answers of every divergent prompt, checked against the nearest source notes."""
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
    replies = ask_all(judge, questions, parse_retries)
    return [{"kind": "divergent_check", "sample_id": sample_id, "model": model,
             "domain_favours": favours, **(reply.parsed or {}), **reply.record()}
            for (sample_id, model, favours), reply in zip(plan, replies, strict=True)]


def summarize(
    screened: list[dict[str, Any]], confirmed: list[dict[str, Any]],
    divergent: list[dict[str, Any]], abst: dict[str, list[bool]], catalog: Catalog,
) -> dict[str, Any]:
    made = [r for r in confirmed if r["makes_claim"]]
    div_prompts = {r["sample_id"] for r in divergent}

    def div_count(model: str, pred: Any) -> int:
        return sum(1 for r in divergent if r["model"] == model and pred(r))

    out: dict[str, Any] = {
        "catalog": {"name": catalog.name, "sha256": catalog.sha256, "claims": len(catalog.claims),
                    "training_claims": len(catalog.training_claims), "notes": len(catalog.notes)},
        "catalog_claims": {
            "screened": len(screened),
            "candidates": len(confirmed),
            "judge_decided": sum(r["decided_by"] == "judge" for r in confirmed),
            "screen_decided": sum(r["decided_by"] == "screen" for r in confirmed),
            "made": {m: sum(r["model"] == m for r in made) for m in MODELS},
            "made_by_claim": [{k: r[k] for k in ("claim_id", "sample_id", "model", "severity",
                                                 "decided_by")} for r in made],
        },
        # (b): hard errors on the divergent prompts, the paper's "4 fine-tuned, 0 base"
        "confident_errors": {m: div_count(m, lambda r: r.get("verdict") == "hard")
                             for m in MODELS},
        "divergent": {
            "n_prompts": len(div_prompts),
            "medium_errors": {m: div_count(m, lambda r: r.get("verdict") == "medium")
                              for m in MODELS},
            "judge_abstained": {m: div_count(m, lambda r: r.get("abstained") is True)
                                for m in MODELS},
            "not_ok": {m: div_count(m, lambda r: r["status"] != "ok") for m in MODELS},
        },
        "abstentions": {m: sum(abst[m]) for m in MODELS},
        "abstention_rates": {m: rate(sum(abst[m]), len(abst[m])) for m in MODELS},
        "abstention_rule": "the answer's first 300 characters hold a catalog phrase",
        "paper": {"divergent_prompts": 18, "confident_errors": {"base": 0, "ft": 4},
                  "abstentions": {"base": "2/50", "ft": "1/50"}},
    }
    truth_rows = [r for r in screened if r["marker_present"] is not None]
    if truth_rows:  # smoke: markers are ground truth, per answer
        keys = sorted({(str(r["sample_id"]), r["model"]) for r in truth_rows})
        truth = {k: False for k in keys}
        for r in truth_rows:
            truth[(str(r["sample_id"]), r["model"])] |= r["marker_present"]
        flagged = {(str(r["sample_id"]), r["model"]) for r in made}
        passed = {(str(r["sample_id"]), r["model"]) for r in screened if r["passes_threshold"]}
        t = [truth[k] for k in keys]
        out["ground_truth"] = {
            "unit": "answer (any planted wrong value present)",
            "answers": len(keys), "with_error": sum(t),
            "audit": precision_recall([k in flagged for k in keys], t),
            "screen_only": precision_recall([k in passed for k in keys], t),
        }
    return out


def judge_calls(cfg: Config) -> int:
    """About how many judge calls the audit makes (for estimates): confirmations + probes."""
    return (cfg.audit.confirm_limit or 8) + (8 if cfg.model.source == "smoke" else 36)
