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

from advisor_repro.audits.core import (
    Judging,
    answer_pool,
    catalog_inputs,
    draw_training_sample,
    load_catalog,
)
from advisor_repro.audits.training_data import (
    SAMPLE_RULE,
    Labels,
    errors_to_trace,
    judge_calls,
    judge_sample,
    summarize,
    trace,
)
from advisor_repro.config import Config
from advisor_repro.evaluation.embeddings import Embedder
from advisor_repro.files import read_jsonl, write_json, write_jsonl
from advisor_repro.hardware.projection import GpuWork
from advisor_repro.judges import make_judge, waits
from advisor_repro.judges import unavailable as judge_unavailable
from advisor_repro.judges.local import model_caches, pick_device
from advisor_repro.judges.pairs import external_inputs as judge_external
from advisor_repro.models import hub as models
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult


def planted_labels(cfg: Config, ctx: StageContext) -> Labels | None:
    """Smoke only. Read beside data/train.jsonl, whose declared hash pins it: the labels are
    written by the same data-stage run, and the pipeline has no optional inputs."""
    path = ctx.run_dir / "data" / "planted_errors.jsonl"
    if cfg.data.source != "builtin:smoke" or not path.is_file():
        return None
    return {(r["index"], r["turn"]): r for r in read_jsonl(path) if r["split"] == "train"}


def run(cfg: Config, ctx: StageContext) -> StageResult:
    au = cfg.audit
    train = read_jsonl(ctx.input("data/train.jsonl"))
    findings = read_jsonl(ctx.input("audit/findings.jsonl"))
    catalog = load_catalog(au.catalog)
    labels = planted_labels(cfg, ctx)
    sample = draw_training_sample(train, au.training_sample, au.training_seeds)
    emb = Embedder(au.embedding_model, pick_device(cfg.hardware.device))
    judging = Judging(make_judge(cfg, ctx.out / "cache"), emb, cfg.judge.parse_retries)
    try:
        rows = judge_sample(judging, catalog, train, sample, au.notes_top_k)
        errors = errors_to_trace(catalog, findings)
        traced = trace(judging, train, errors, labels, au.trace_top_k, au.claim_similarity,
                       au.confirm_limit)
    finally:
        judging.judge.close()
    if labels is not None:
        for r in rows:
            r["planted"] = labels.get((r["index"], r["turn"]))
    summary = summarize(
        {"n": len(sample), "seeds": au.training_seeds,
         "per_seed": au.training_sample // len(au.training_seeds), "rule": SAMPLE_RULE,
         "pool": len(answer_pool(train))},
        rows, traced, errors, catalog, judging.provenance(), labels)
    write_jsonl(ctx.out / "findings.jsonl", rows)
    write_jsonl(ctx.out / "trace.jsonl", traced)
    write_json(ctx.out / "summary.json", summary.to_json())
    prev = summary.prevalence
    figures = {"n": len(rows), "n_ok": prev["n_ok"], "hard": prev["hard"]["k"],
               "inclusive": prev["inclusive"]["k"], "traced": len(errors)}
    if summary.ground_truth is not None:
        figures["planted"] = summary.ground_truth["planted"]["k"]
    return StageResult(figures=figures)


def external_inputs(cfg: Config) -> dict[str, str]:
    """The factuality catalog and, for the replay backend, the replayed file."""
    return {**catalog_inputs(cfg.audit.catalog), **judge_external(cfg)}


def estimate(cfg: Config) -> Estimate:
    smoke = cfg.model.source == "smoke"
    calls = judge_calls(cfg)
    return Estimate(seconds=30 + waits(cfg.judge, calls) * (4.0 if smoke else 8.0),
                    disk_bytes=2**20,
                    vram_gib=10.5 if cfg.judge.backend == "local" and not smoke else 0.0)


STAGE = Stage(
    name="audit-training",
    summary="training-data audit: error prevalence (Wilson CIs) and traces of fine-tuned errors",
    run=run,
    needs=("data/train.jsonl", "audit/findings.jsonl"),
    config=("judge", "audit"),
    external=external_inputs,
    estimate=estimate,
    # a hub MiniLM and the local judge's model, while still to be downloaded or converted
    caches=lambda cfg: {**models.hub_caches(cfg.audit.embedding_model), **model_caches(cfg)},
    prerequisites=lambda cfg: [*judge_unavailable(cfg),
                               *models.models_unavailable(cfg.audit.embedding_model)],
    gpu_work=GpuWork("judged", judge_calls, rest_s=30.0),
)
