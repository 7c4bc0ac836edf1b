"""Stage `control`: beyond the paper, the same 3 epochs in ONE process with ONE optimizer and
ONE LR schedule, to measure what the adapter-only handoff costs.

Shape: `train.control.recipe` (default "segment1": segment 1's micro-batch x grad-accum, lr and
warmup ratio over all epochs, the uninterrupted run the paper would have made without a session
limit). Length: the epochs of both segments; when the segments are capped with max_steps (smoke,
rehearsal), as many optimizer steps as it takes to see the same number of sequences as they did.
It trains in a fresh process, like the segments (stages/train.py), then compares.

Outputs: steps.jsonl, summary.json, adapter/, checkpoints/ (crash resume), and
comparison.json: loss curves of both paths over sequences seen, final training loss, held-out
loss of the segment-2 adapter and the control adapter on the test split, and their difference
(handoff minus control). Rerunning segment 2 reruns the control, which compares against it.
"""

from __future__ import annotations

from advisor_repro.config import Config
from advisor_repro.files import read_jsonl, write_json
from advisor_repro.hardware.projection import GpuWork
from advisor_repro.models import hub as models
from advisor_repro.stages.contract import Stage, StageContext, StageResult
from advisor_repro.stages.train import (
    COMMON,
    DECISION,
    TEST_TEXT,
    TRAIN_TEXT,
    estimate_for,
    launch,
    prerequisites_for,
    result_of,
)
from advisor_repro.training import segments
from advisor_repro.training.records import TrainSummary


def run(cfg: Config, ctx: StageContext) -> StageResult:
    summary = launch(cfg, ctx)
    seg1 = TrainSummary.read(ctx.input("train-1/summary.json"))
    seg2 = TrainSummary.read(ctx.input("train-2/summary.json"))
    comparison = segments.compare(  # pure, over the summaries' JSON
        seg1.to_json(), seg2.to_json(), {**summary.to_json(), "recipe": cfg.train.control.recipe},
        read_jsonl(ctx.input("train-1/steps.jsonl")),
        read_jsonl(ctx.input("train-2/steps.jsonl")),
        read_jsonl(ctx.out / "steps.jsonl"),
    )
    write_json(ctx.out / "comparison.json", comparison)
    result = result_of(summary)
    delta = comparison["heldout_loss"]["delta"]
    if delta is not None:
        result.figures["heldout_delta"] = round(delta, 4)
    return result


STAGE = Stage(
    name="control",
    summary="beyond the paper: the same 3 epochs in one process with one optimizer and "
    "schedule; compares held-out loss with the handoff path",
    run=run,
    needs=(TRAIN_TEXT, TEST_TEXT, DECISION, "train-1/summary.json", "train-1/steps.jsonl",
           "train-2/summary.json", "train-2/steps.jsonl"),
    config=(*COMMON, "train.segment1", "train.segment2", "train.control"),
    estimate=estimate_for("control"),
    caches=lambda cfg: models.base_model_caches(cfg.model, "train"),
    prerequisites=prerequisites_for("control"),
    gpu_work=GpuWork("train"),
)
