"""Stage `audit-data`: the paper's structural dataset audit (Table 2) and its topic distribution
(Table 1), as JSON + Markdown.

The pure cores are advisor_repro.audits.table2 and advisor_repro.audits.table1. Like the
author's evaluate_dataset.py, which loads the hub dataset itself, this stage audits the source
as loaded (advisor_repro.data.load_splits), invalid records included, and reports their rates;
the data stage refuses invalid records for training. So `repro audit-data` runs on a dataset
the data stage refuses. Where the data stage has run, its fingerprint must match the records
audited here: the audit and the training read the same dataset.
"""

from __future__ import annotations

import dataclasses

from advisor_repro.audits import table1
from advisor_repro.audits.table2 import (
    StructuralAudit,
    render_markdown,
    structural_audit,
    template_reuse,
)
from advisor_repro.config import Config, Data
from advisor_repro.data import (
    ensure_available,
    eval_draw_indices,
    fingerprint,
    load_splits,
    source_caches,
    source_inputs,
)
from advisor_repro.errors import DataError
from advisor_repro.files import atomic_write_text, read_json, sha256_file, write_json
from advisor_repro.models import hub as models
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult

OTHER = "other/general advising"
DATA_FINGERPRINT = "data/fingerprint.json"


def run(cfg: Config, ctx: StageContext) -> StageResult:
    splits, _ = load_splits(_source(cfg, ctx))
    _same_as_data_stage(splits, ctx)
    train, test = splits["train"], splits["test"]
    audit = structural_audit(train, test, near_dup_threshold=cfg.audit.near_dup_threshold)
    # The paper: "most of the 50 eval prompts have an identical question string in train".
    n = min(cfg.data.eval_prompts, len(test))
    eval_test = [test[i] for i in eval_draw_indices(len(test), n, cfg.data.eval_draw_seed)]
    audit.eval_prompts = template_reuse(train, eval_test)
    write_json(ctx.out / "table2.json", audit.to_json())
    atomic_write_text(ctx.out / "table2.md", render_markdown(audit) + _eval_line(audit))
    topics = table1.topic_table(train, _encoder(cfg), cfg.audit.topic_sample,
                                cfg.audit.topic_margin, cfg.audit.topic_table)
    write_json(ctx.out / "table1.json", topics.to_json())
    atomic_write_text(ctx.out / "table1.md", table1.render_markdown(topics))
    tt = audit.train_test
    pooled = audit.all
    shown = topics.distribution(topics.shown)
    return StageResult(
        figures={
            "valid": pooled["valid_rate"],
            "dup": pooled["exact_duplicate_conversations"],
            "overlap": tt["train_test_exact_overlap"],
            "near_dup": tt["near_dup_test_conversations"],
            "max_sim_mean": round(tt["max_sim_mean"], 4)
            if tt["max_sim_mean"] is not None
            else None,
            "table1_other": shown[OTHER]["count"] if shown else None,
        },
        warnings=[f"{pooled['n_invalid']} record(s) fail the schema or role-alternation "
                  "check: the data stage refuses this dataset for training"]
        if pooled["n_invalid"] else [],
    )


def _eval_line(audit: StructuralAudit) -> str:
    ep = audit.eval_prompts
    if ep is None:
        return ""
    return (f"\nEvaluation prompts with an identical question in train: "
            f"{ep['test_prompts_in_train_first_human']} of {ep['test_prompts']} "
            f"(first human turn), {ep['test_prompts_in_train_any_human']} (any human turn).\n")


def _source(cfg: Config, ctx: StageContext) -> Data:
    """The data section, with a hub revision pinned to the commit the data stage resolved when
    it has run: the audit then reads the very snapshot the training reads."""
    path = ctx.run_dir / DATA_FINGERPRINT
    if not cfg.data.source.startswith("hf:") or not path.is_file():
        return cfg.data
    revision = read_json(ctx.input(DATA_FINGERPRINT)).get("revision")
    return dataclasses.replace(cfg.data, revision=revision) if revision else cfg.data


def _same_as_data_stage(splits: dict[str, list], ctx: StageContext) -> None:
    """Refuse to audit other records than the data stage wrote (a moved hub revision)."""
    path = ctx.run_dir / DATA_FINGERPRINT
    if not path.is_file():
        return
    theirs = read_json(ctx.input(DATA_FINGERPRINT)).get("splits", {})
    ours = fingerprint(splits)
    if any(theirs.get(s, {}).get("sha256") != ours[s]["sha256"] for s in ours):
        raise DataError(
            "the dataset audit-data loaded differs from the one the data stage wrote "
            f"({DATA_FINGERPRINT}): the source changed between the two stages",
            "pin data.revision, then rerun both: repro data --force, repro audit-data --force",
        )


def external_inputs(cfg: Config) -> dict[str, str]:
    """The dataset source, and Table 1's labels, keywords and descriptions (data: editing them
    makes this stale)."""
    return {**source_inputs(cfg.data), "topic_labels": sha256_file(table1.LABELS_FILE)}


def check(cfg: Config, ctx: StageContext) -> None:
    """Before audit-data/ is touched: the source can be read (a hub dataset cached or
    downloadable, a local folder present)."""
    ensure_available(_source(cfg, ctx))


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
    "and topic distribution (Table 1), of the source as loaded",
    run=run,
    optional=(DATA_FINGERPRINT,),
    config=("data", "audit.near_dup_threshold", "audit.embedding_model", "audit.topic_sample",
            "audit.topic_margin", "audit.topic_table"),
    external=external_inputs,
    estimate=estimate,
    check=check,
    caches=lambda cfg: {**models.hub_caches(cfg.audit.embedding_model),  # a hub MiniLM
                        **source_caches(cfg.data)},
    prerequisites=lambda cfg: [*models.models_unavailable(cfg.audit.embedding_model),
                               *models.dataset_unavailable(cfg.data.source, cfg.data.revision)],
)
