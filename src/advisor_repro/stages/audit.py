"""Stage `audit`: the factuality audit of PAPER.md "Audits", on this run's answers.

(a) Catalogued claims: does either model's answer (at judge.cap) still make a claim of the
    factuality catalog? MiniLM screens every answer sentence against each claim (and its
    correct fact); claims tied to a prompt, and untied ones whose similarity passes
    audit.claim_similarity, go to the judge for confirmation (at most audit.confirm_limit).
    Where the judge gives no usable reply, the screen decides, and the row says so.
(b) Divergent prompts (the judge's domain scores differ): the judge checks each model's
    answer against the nearest source notes: hard (confident) error / medium / fine.
    The paper: 18 divergent prompts, 4 confident fine-tuned errors, 0 base.
(c) Abstentions: answers that open by declining or deferring (catalog phrases); the paper:
    base 2/50, fine-tuned 1/50.
Smoke profile: the catalog's markers (planted wrong values) are ground truth for (a); the
summary gives the audit's precision and recall against them.

Outputs: findings.jsonl, trace.jsonl (every screened answer x claim with its best sentence),
summary.json, cache/.
"""

from __future__ import annotations

from advisor_repro.audits.core import (
    Judging,
    abstained,
    catalog_inputs,
    load_catalog,
)
from advisor_repro.audits.factuality import (
    MODELS,
    AbstentionFinding,
    confirm,
    divergent_checks,
    judge_calls,
    screen,
    summarize,
)
from advisor_repro.config import Config
from advisor_repro.evaluation.embeddings import Embedder
from advisor_repro.files import read_json, read_jsonl, write_json, write_jsonl
from advisor_repro.hardware.projection import GpuWork
from advisor_repro.judges import make_judge, waits
from advisor_repro.judges import unavailable as judge_unavailable
from advisor_repro.judges.local import model_caches, pick_device
from advisor_repro.judges.pairs import answers_at_cap
from advisor_repro.judges.pairs import external_inputs as judge_external
from advisor_repro.judges.stats import base_slots
from advisor_repro.models import hub as models
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult


def run(cfg: Config, ctx: StageContext) -> StageResult:
    prompts = read_jsonl(ctx.input("data/eval_prompts.jsonl"))
    answers = answers_at_cap(read_jsonl(ctx.input("generate/answers.jsonl")), cfg.judge.cap)
    verdicts = read_jsonl(ctx.input("judge/verdicts.jsonl"))
    mapping = base_slots(read_json(ctx.input("judge/mapping.json")))
    prompts = [p for p in prompts
               if all((str(p["sample_id"]), m) in answers for m in MODELS)]
    by_id = {str(p["sample_id"]): p for p in prompts}
    catalog = load_catalog(cfg.audit.catalog)
    emb = Embedder(cfg.audit.embedding_model, pick_device(cfg.hardware.device))
    screened = screen(emb, catalog, prompts, answers, cfg.audit.claim_similarity)
    judging = Judging(make_judge(cfg, ctx.out / "cache"), emb, cfg.judge.parse_retries)
    try:
        claims = {c.id: c for c in catalog.claims}
        confirmed = confirm(judging, screened, claims, by_id, answers, cfg.audit.confirm_limit)
        divergent = divergent_checks(judging, catalog, by_id, answers, verdicts, mapping,
                                     cfg.audit.notes_top_k)
    finally:
        judging.judge.close()
    abst = {m: [abstained(answers[(str(p["sample_id"]), m)], catalog.abstention)
                for p in prompts] for m in MODELS}
    abst_rows: list[AbstentionFinding] = [
        {"kind": "abstention", "sample_id": p["sample_id"], "model": m}
        for m in MODELS for p, a in zip(prompts, abst[m], strict=True) if a]
    summary = summarize(screened, confirmed, divergent, abst, catalog,
                        (judging.provenance(), {"prompts": len(prompts), "cap": cfg.judge.cap}))
    write_jsonl(ctx.out / "findings.jsonl", [*confirmed, *divergent, *abst_rows])
    write_jsonl(ctx.out / "trace.jsonl", screened)
    write_json(ctx.out / "summary.json", summary.to_json())
    errors = summary.confident_errors
    figures = {"claims_ft": summary.catalog_claims["made"]["ft"],
               "claims_base": summary.catalog_claims["made"]["base"],
               "divergent": summary.divergent["n_prompts"], "errors_ft": errors["ft"],
               "errors_base": errors["base"], "abstain_base": summary.abstentions["base"],
               "abstain_ft": summary.abstentions["ft"]}
    if summary.ground_truth is not None:
        figures["recall"] = summary.ground_truth["audit"]["recall"]
    return StageResult(figures=figures)


def external_inputs(cfg: Config) -> dict[str, str]:
    """The factuality catalog and, for the replay backend, the replayed file."""
    return {**catalog_inputs(cfg.audit.catalog), **judge_external(cfg)}


def estimate(cfg: Config) -> Estimate:
    smoke = cfg.model.source == "smoke"
    calls = judge_calls(cfg)
    return Estimate(seconds=20 + waits(cfg.judge, calls) * (4.0 if smoke else 8.0),
                    disk_bytes=2 * 2**20,
                    vram_gib=10.5 if cfg.judge.backend == "local" and not smoke else 0.0)


STAGE = Stage(
    name="audit",
    summary="factuality audit: catalogued claims, divergent prompts, abstentions",
    run=run,
    needs=("data/eval_prompts.jsonl", "generate/answers.jsonl", "judge/verdicts.jsonl",
           "judge/mapping.json"),
    config=("judge", "audit"),
    external=external_inputs,
    estimate=estimate,
    # a hub MiniLM and the local judge's model, while still to be downloaded or converted
    caches=lambda cfg: {**models.hub_caches(cfg.audit.embedding_model), **model_caches(cfg)},
    prerequisites=lambda cfg: [*judge_unavailable(cfg),
                               *models.models_unavailable(cfg.audit.embedding_model)],
    gpu_work=GpuWork("judged", judge_calls, rest_s=20.0),
)
