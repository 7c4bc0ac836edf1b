"""Stage `audit-data`: the paper's structural dataset audit (Table 2) and its topic distribution
(Table 1), as JSON + Markdown.

The pure cores are advisor_repro.audits.table2 and advisor_repro.audits.table1; this module
reads the data stage's outputs, loads the MiniLM encoder for Table 1's semantic classifier
(audit.embedding_model) and writes table2.json / table2.md / table1.json / table1.md.
"""

from __future__ import annotations

from advisor_repro.audits import table1
from advisor_repro.audits.table2 import render_markdown, structural_audit, template_reuse
from advisor_repro.config import Config
from advisor_repro.files import atomic_write_text, read_jsonl, sha256_file, write_json
from advisor_repro.models import hub as models
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult

OTHER = "other/general advising"


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
    topics = table1.topic_table(train, _encoder(cfg), cfg.audit.topic_sample,
                                cfg.audit.topic_margin, cfg.audit.topic_table)
    write_json(ctx.out / "table1.json", topics)
    atomic_write_text(ctx.out / "table1.md", table1.render_markdown(topics))
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
            "table1_other": topics[topics["shown"]]["distribution"][OTHER]["count"],
        }
    )


def external_inputs(cfg: Config) -> dict[str, str]:
    """Table 1's labels, keywords and descriptions are data: editing them makes this stale."""
    return {"topic_labels": sha256_file(table1.LABELS_FILE)}


def _encoder(cfg: Config) -> table1.Encode:
    """MiniLM embeddings (unit vectors) as the semantic classifier's `encode`."""
    from advisor_repro.evaluation.embeddings import Embedder

    embedder = Embedder(cfg.audit.embedding_model)
    return embedder.encode


def estimate(cfg: Config) -> Estimate:
    n = (cfg.data.expected_train or 2000) + (cfg.data.expected_test or 400)
    return Estimate(seconds=max(2.0, n / 200))


STAGE = Stage(
    name="audit-data",
    summary="structural dataset audit (Table 2: schema, duplicates, overlap, near-duplicates) "
    "and topic distribution (Table 1)",
    run=run,
    needs=("data/train.jsonl", "data/test.jsonl", "data/eval_prompts.jsonl"),
    config=("audit.near_dup_threshold", "audit.embedding_model", "audit.topic_sample",
            "audit.topic_margin", "audit.topic_table"),
    external=external_inputs,
    estimate=estimate,
    caches=lambda cfg: models.hub_caches(cfg.audit.embedding_model),  # a hub MiniLM
    prerequisites=lambda cfg: list(models.models_unavailable(cfg.audit.embedding_model)),
)
