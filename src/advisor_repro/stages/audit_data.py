"""Stage `audit-data`: the paper's structural dataset audit (Table 2) as JSON + Markdown.

The pure core is advisor_repro.audits.table2; this module only reads the data stage's outputs
and writes table2.json / table2.md.
"""

from __future__ import annotations

from advisor_repro.audits.table2 import render_markdown, structural_audit, template_reuse
from advisor_repro.config import Config
from advisor_repro.files import atomic_write_text, read_jsonl, write_json
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult


def run(cfg: Config, ctx: StageContext) -> StageResult:
    train = read_jsonl(ctx.input("data/train.jsonl"))
    test = read_jsonl(ctx.input("data/test.jsonl"))
    prompts = read_jsonl(ctx.input("data/eval_prompts.jsonl"))
    audit = structural_audit(train, test, near_dup_threshold=cfg.audit.near_dup_threshold)
    # The paper: "most of the 50 eval prompts have an identical question string in train".
    eval_test = [test[p["dataset_index"]] for p in prompts]
    audit["eval_prompts"] = template_reuse(train, eval_test)
    write_json(ctx.out / "table2.json", audit)
    ep = audit["eval_prompts"]
    atomic_write_text(
        ctx.out / "table2.md",
        render_markdown(audit)
        + (
            f"\nEvaluation prompts with an identical question in train: "
            f"{ep['test_prompts_in_train_first_human']} of {ep['test_prompts']} "
            "(first human turn), "
            f"{ep['test_prompts_in_train_any_human']} (any human turn).\n"
        ),
    )
    tt = audit["train_test"]
    return StageResult(
        figures={
            "valid": audit["all"]["valid_rate"],
            "dup": audit["all"]["exact_duplicate_conversations"],
            "overlap": tt["train_test_exact_overlap"],
            "near_dup": tt["near_dup_test_conversations"],
            "max_sim_mean": round(tt["max_sim_mean"], 4)
            if tt["max_sim_mean"] is not None
            else None,
        }
    )


def estimate(cfg: Config) -> Estimate:
    n = (cfg.data.expected_train or 2000) + (cfg.data.expected_test or 400)
    return Estimate(seconds=max(2.0, n / 200))


STAGE = Stage(
    name="audit-data",
    summary="structural dataset audit (Table 2): schema, duplicates, overlap, near-duplicates",
    run=run,
    needs=("data/train.jsonl", "data/test.jsonl", "data/eval_prompts.jsonl"),
    config=("audit.near_dup_threshold",),
    estimate=estimate,
)
