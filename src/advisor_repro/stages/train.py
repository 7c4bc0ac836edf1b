"""Stages `train-1` and `train-2`: the paper's two QLoRA segments, each in a fresh process.

The stage writes the resolved config to <stage>/config.json and starts
`python -m advisor_repro.training.process --run-dir RUN --stage train-N`, which runs
`advisor_repro.training.trainer.run` and exits; nothing in memory crosses from segment 1 to
segment 2, only the handoff bundle on disk. The control run (stages/control.py) uses the same
process.

Outputs: steps.jsonl, summary.json, adapter/ (PEFT adapter + tokenizer: what the handoff
packages), config.json, checkpoints/ (Trainer checkpoints, crash resume only).

Failures: a refusal the user can act on (a bundle that fails verification, a wrong trainable
count, no GPU for unsloth) comes back as the same ReproError and exit code. A crash (a Python
error, a kill, out of host memory) leaves the stage "partial", so `repro train --segment N`
resumes from the last checkpoint instead of starting over.
"""

from __future__ import annotations

from pathlib import Path

from advisor_repro.config import Config
from advisor_repro.models import hub as models
from advisor_repro.stages.contract import Stage, StageContext, StageResult
from advisor_repro.training.process import (
    COMMON,
    DECISION,
    TEST_TEXT,
    TRAIN_TEXT,
    estimate_for,
    launch,
    prerequisites_for,
    result_of,
)


def run_segment(cfg: Config, ctx: StageContext) -> StageResult:
    return result_of(launch(cfg, ctx))


def caches(cfg: Config) -> dict[str, Path]:
    """The base model's cache, while it is still to be converted or downloaded."""
    return models.base_model_caches(cfg.model, "train")


STAGE_1 = Stage(
    name="train-1",
    summary="segment 1 (the P100 session): QLoRA from a fresh LoRA, in its own process",
    run=run_segment,
    needs=(TRAIN_TEXT, DECISION),
    config=(*COMMON, "train.segment1"),
    estimate=estimate_for("train-1"),
    caches=caches,
    prerequisites=prerequisites_for("train-1"),
)
STAGE_2 = Stage(
    name="train-2",
    summary="segment 2 (the T4 session): from the verified handoff bundle only, fresh "
    "optimizer and LR schedule, in its own process",
    run=run_segment,
    needs=("handoff/bundle", "handoff/verified.json", TRAIN_TEXT, TEST_TEXT, DECISION),
    config=(*COMMON, "train.segment2"),
    estimate=estimate_for("train-2"),
    caches=caches,
    prerequisites=prerequisites_for("train-2"),
)
