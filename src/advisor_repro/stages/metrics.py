"""Stage `metrics`: reference metrics of both models' answers, per cap, with bootstrap CIs; a
door into evaluation/scoring.py.

Reads data/eval_prompts.jsonl (references) and generate/answers.jsonl. Writes:
- metrics/per_item.jsonl: one line per (sample_id, model, cap): rouge_l_f1, bertscore_p,
  bertscore_r, bertscore_f1, chars, new_tokens, truncated;
- metrics/summary.json: "origin" ("run" here, "release" from `repro import-release`), "caps",
  and per cap ("256", "512", ...): n, sacrebleu {base, ft, delta, signature}; rouge_l_f1,
  bertscore_f1, bertscore_p, bertscore_r {base, ft, delta, ci_low, ci_high}; truncation_rate,
  mean_chars, mean_tokens {base, ft}; plus the BERTScore settings and hash string, the
  bootstrap method, the normalisation and the library versions.
"""

from __future__ import annotations

from advisor_repro.config import Config
from advisor_repro.errors import DataError
from advisor_repro.evaluation import metrics as m
from advisor_repro.evaluation.generation import AnswerRow, EvalPrompt, SampleId
from advisor_repro.evaluation.scoring import (
    MetricsSummary,
    cap_summary,
    pair_answers,
    per_item_rows,
    references,
    score_all,
    settings,
)
from advisor_repro.files import read_jsonl, write_json, write_jsonl
from advisor_repro.manifest import library_versions
from advisor_repro.models import hub as models
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult


def run(cfg: Config, ctx: StageContext) -> StageResult:
    prompts: dict[SampleId, EvalPrompt] = {
        p["sample_id"]: p for p in read_jsonl(ctx.input("data/eval_prompts.jsonl"))}
    answers: list[AnswerRow] = read_jsonl(ctx.input("generate/answers.jsonl"))
    pairs = pair_answers(answers, prompts, "generate/answers.jsonl")
    if not pairs:
        raise DataError("generate/answers.jsonl holds no answers", "rerun `repro generate`")
    scored = score_all(cfg.metrics, pairs, references(prompts))
    summary = MetricsSummary(
        origin="run", caps=sorted(pairs), n_items=len(prompts),
        per_cap={cap: cap_summary(cfg.metrics, cap, rows, scored) for cap, rows in pairs.items()},
        settings=settings(cfg.metrics, scored.bertscore_hash),
    )
    write_jsonl(ctx.out / "per_item.jsonl", per_item_rows(pairs, scored))
    write_json(ctx.out / "summary.json", summary.to_json())
    top = max(pairs)
    return StageResult(figures={
        "caps": len(pairs),
        f"bertscore_f1_delta@{top}": round(summary.per_cap[top]["bertscore_f1"]["delta"], 4),
        f"rouge_l_delta@{top}": round(summary.per_cap[top]["rouge_l_f1"]["delta"], 4),
    })  # fmt: skip


def external_inputs(cfg: Config) -> dict[str, str]:
    """The library versions: another bert-score or sacrebleu is another number."""
    return {k: str(v) for k, v in library_versions(m.VERSIONED).items() if k != "torch"}


STAGE = Stage(
    name="metrics",
    summary="SacreBLEU, ROUGE-L, BERTScore per cap, base vs FT, bootstrap 95% CIs",
    run=run,
    needs=("data/eval_prompts.jsonl", "generate/answers.jsonl"),
    config=("metrics",),
    external=external_inputs,
    estimate=lambda cfg: Estimate(seconds=60 if cfg.metrics.bertscore_model == "roberta-large"
                                  else 15, disk_bytes=2**20),
    caches=lambda cfg: models.hub_caches(cfg.metrics.bertscore_model),  # a hub BERTScore model
    prerequisites=lambda cfg: list(models.models_unavailable(cfg.metrics.bertscore_model)),
)  # fmt: skip
