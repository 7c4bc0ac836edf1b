"""Stages `train-1` and `train-2`: the paper's two QLoRA segments, each in a fresh process.

The stage writes the resolved config to <stage>/config.json, resolves its declared inputs into
`SegmentInputs` and starts `python -m advisor_repro.training.process` on them, which runs
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

from advisor_repro import errors
from advisor_repro.config import Config
from advisor_repro.files import read_json, write_json
from advisor_repro.fresh import run_module
from advisor_repro.hardware.projection import GpuWork
from advisor_repro.models import hub as models
from advisor_repro.stages.contract import Estimate, Stage, StageContext, StageResult
from advisor_repro.training import process, segments
from advisor_repro.training.records import SegmentInputs, TrainSummary

TRAIN_TEXT, TEST_TEXT = "data/train_text.jsonl", "data/test_text.jsonl"
DECISION = "preflight/decision.json"
BUNDLE = "handoff/bundle"
# Config slices every training run depends on (checkpoint_every only affects crash resume).
COMMON = (
    "model.source", "model.random_scale", "model.train_base", "model.train_base_revision",
    "model.backend", "hardware.vram_budget_gib", "train.max_seq_length", "train.optimizer",
    "train.lr_scheduler", "train.max_grad_norm", "train.weight_decay", "train.seed",
    "train.gradient_checkpointing", "train.unsloth_checkpointing", "train.padding_side",
    "train.packing", "train.loss_on", "train.precision", "train.session_limit_action",
    "train.lora",
)


class TrainingCrashed(RuntimeError):
    """The training process died without a ReproError: not a refusal, so the stage stays
    partial and a rerun resumes from its last checkpoint."""


def inputs_of(ctx: StageContext) -> SegmentInputs:
    """The training run's inputs, from what the stage declares (each checked to exist)."""
    for rel in ctx.needs:
        ctx.input(rel)  # every declared input exists, or StageInputError names the stage
    declared = set(ctx.needs)
    return SegmentInputs(
        stage=ctx.name, out=ctx.out, decision=ctx.input(DECISION),
        train_text=ctx.input(TRAIN_TEXT),
        test_text=ctx.input(TEST_TEXT) if TEST_TEXT in declared else None,
        bundle=ctx.input(BUNDLE) if BUNDLE in declared else None)


def launch(cfg: Config, ctx: StageContext) -> TrainSummary:
    """Run ctx.name's training in a fresh interpreter; return its summary.json."""
    inputs = inputs_of(ctx)
    write_json(ctx.out / "config.json", cfg.to_dict())
    (ctx.out / process.ERROR_FILE).unlink(missing_ok=True)
    cpu = read_json(inputs.decision).get("device") == "cpu"
    done = run_module(process.MODULE, inputs.argv(), env=process.child_env(cpu),
                      forward_sigterm=True)
    if done.returncode == 0:
        return TrainSummary.read(ctx.out / "summary.json")
    refusal = process.child_error(ctx.out)
    if refusal is not None:
        raise refusal
    code = done.returncode
    how = f"signal {-code}" if code < 0 else f"exit code {code}"
    raise TrainingCrashed(
        f"the {ctx.name} training process died ({how}); its output is above. "
        f"Rerun the same command to resume from the last checkpoint in {ctx.out}/checkpoints"
    )


def result_of(summary: TrainSummary) -> StageResult:
    figures = {
        "steps": summary.optimizer_steps,
        "loss": f"{summary.start_loss:.4g}->{summary.end_loss:.4g}"
        if summary.start_loss is not None else None,
        "trainable": summary.trainable_params,
        "tok/s": summary.tokens_per_s,
        # the split in force, and whether auto chose it
        "split": (f"{summary.micro_batch}x{summary.grad_accum} "
                  f"({summary.micro_batch_choice['mode']})"),
    }
    if summary.heldout:
        figures["heldout"] = round(summary.heldout["loss"], 4)
    return StageResult(figures=figures, warnings=summary.warnings)


def estimate_for(stage: str):
    def estimate(cfg: Config) -> Estimate:
        plan = segments.plan_for(cfg, stage, cfg.data.expected_train or 100)
        n = cfg.data.expected_train or 100
        steps = segments.optimizer_steps(plan, n)
        disk = cfg.train.lora.expected_trainable * 4 * 6 or 2**28  # adapter + 2 checkpoints
        if cfg.hardware.device == "cpu" or cfg.model.source == "smoke":
            seconds = 20 + 2.0 * steps * plan.shape.effective  # ~2 s a 256-token sequence
            return Estimate(seconds=seconds, disk_bytes=disk)
        paper = {s: segments.PAPER_SECONDS[s] / segments.PAPER_STEPS[s] for s in PAPER_STAGES}
        per_step = paper.get(stage) or paper["train-1"] * plan.shape.effective / 8
        return Estimate(seconds=per_step * steps, disk_bytes=disk, vram_gib=12.1)

    return estimate


PAPER_STAGES = ("train-1", "train-2")


def prerequisites_for(stage: str):
    """A training stage's prerequisites (Stage.prerequisites): its base model loadable, and
    its projected time within its session limit while train.session_limit_action = "stop"
    (it would end there, short of its steps; "pause" checkpoints and continues in the next
    session, the free-tier way; "warn" runs on)."""

    def prerequisites(cfg: Config) -> list[errors.ReproError]:
        from advisor_repro.models import hub

        found: list[errors.ReproError] = list(hub.base_unavailable(cfg.model, "train"))
        n = cfg.data.expected_train or 100
        plan = segments.plan_for(cfg, stage, n)
        limit_h, action = plan.session_limit_hours, cfg.train.session_limit_action
        hours = estimate_for(stage)(cfg).seconds / 3600
        if limit_h and hours > limit_h and action == "stop":
            found.append(errors.ResourceError(
                f"{stage} is projected at {hours:.2f} h, over its {limit_h:g} h session limit, "
                f"and train.session_limit_action = 'stop' would end it there, short of its "
                f"{segments.optimizer_steps(plan, n)} optimizer steps",
                "--set train.session_limit_action='pause' (checkpoint, continue in the next "
                "session), or raise the segment's session_limit_hours"))
        return found

    return prerequisites


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
    gpu_work=GpuWork("train"),
)
STAGE_2 = Stage(
    name="train-2",
    summary="segment 2 (the T4 session): from the verified handoff bundle only, fresh "
    "optimizer and LR schedule, in its own process",
    run=run_segment,
    needs=(BUNDLE, "handoff/verified.json", TRAIN_TEXT, TEST_TEXT, DECISION),
    config=(*COMMON, "train.segment2"),
    estimate=estimate_for("train-2"),
    caches=caches,
    prerequisites=prerequisites_for("train-2"),
    gpu_work=GpuWork("train"),
)
