"""What each training run is, in the paper's words, and the arithmetic around it. Pure.

`plan_for` turns the Config into a `SegmentPlan` for `train-1`, `train-2` or `control`;
`control_steps` matches the control run to what the two segments saw; `halve` is the shape
change made when a micro-batch does not fit in VRAM; `project` and `should_stop` are the
session-limit arithmetic; `summarize` reduces steps.jsonl rows to the summary's loss figures;
`compare` builds control/comparison.json. No torch, no files: unit-tested on plain values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TypedDict

from advisor_repro.config import Config

STAGES = ("train-1", "train-2", "control")
# Paper's wall-clock per segment (PAPER.md table), for `repro plan` estimates.
PAPER_SECONDS = {"train-1": 5 * 3600 + 47 * 60 + 25, "train-2": 5 * 3600 + 26 * 60 + 18}
PAPER_STEPS = {"train-1": 284, "train-2": 142}


class StepRow(TypedDict):
    """One line of steps.jsonl (training/steplog.py writes it)."""

    step: int
    epoch: float
    loss: float
    lr: float
    grad_norm: float | None
    tokens: int
    elapsed: float  # seconds of training in this segment, across resumes
    mem: dict[str, float]  # peak GiB during the step, by source


class ShapeRecord(TypedDict):
    micro_batch: int
    grad_accum: int
    effective: int


class PlanRecord(TypedDict):
    """`SegmentPlan.to_dict`: the plan as summary.json holds it."""

    stage: str
    segment: int
    epochs: int
    shape: ShapeRecord
    lr: float
    warmup_ratio: float
    max_steps: int
    session_limit_hours: float
    from_bundle: bool
    heldout: bool
    split: str
    n_train: int


class LossFigures(TypedDict):
    start_loss: float | None
    end_loss: float | None
    min_loss: float | None
    min_loss_step: int | None


class Curves(TypedDict):
    x: str
    handoff: list[list[float]]
    control: list[list[float]]


class Comparison(TypedDict):
    """control/comparison.json."""

    control_recipe: str | None
    sequences_seen: dict[str, int]
    optimizer_steps: dict[str, int]
    final_train_loss: dict[str, float | None]
    heldout_loss: dict[str, float | None]
    segment2_start_vs_segment1_end: dict[str, float | None]
    curves: Curves


@dataclass(frozen=True)
class Shape:
    micro_batch: int  # sequences per forward pass
    grad_accum: int  # forward passes per optimizer step

    @property
    def effective(self) -> int:
        return self.micro_batch * self.grad_accum


@dataclass(frozen=True)
class SegmentPlan:
    stage: str  # "train-1" | "train-2" | "control"
    segment: int  # 1, 2, or 0 for the control run
    epochs: int  # passes over the training split (when max_steps is 0)
    shape: Shape
    lr: float
    warmup_ratio: float  # of this run's optimizer steps; the schedule restarts in every run
    max_steps: int  # cap on optimizer steps; 0 = run the epochs
    session_limit_hours: float  # 0 = no limit
    from_bundle: bool  # segment 2: start from the handoff bundle's adapter only
    heldout: bool  # compute the held-out loss on the test split at the end
    split: str = "fixed"  # "auto": the trainer re-divides shape.effective to fit the VRAM budget
    n_train: int = 0  # training conversations, when known: fixes the step count (trainer_steps)

    def trainer_steps(self) -> int:
        """The Trainer's max_steps: the cap, else the count the paper's Trainer made (see
        optimizer_steps); -1 (the Trainer counts for itself) when n_train is unknown."""
        if self.max_steps:
            return self.max_steps
        return optimizer_steps(self, self.n_train) if self.n_train else -1

    def to_dict(self) -> PlanRecord:
        d = asdict(self)
        d["shape"]["effective"] = self.shape.effective
        return PlanRecord(**d)


def plan_for(cfg: Config, stage: str, n_train: int = 0) -> SegmentPlan:
    """The run `stage` makes under `cfg`; n_train (training conversations) is needed only to
    match the control run to capped segments."""
    t = cfg.train
    s1, s2 = t.segment1, t.segment2
    r2 = s2.resolved()
    if stage == "train-1":
        return SegmentPlan(stage, 1, s1.epochs, Shape(s1.micro_batch, s1.grad_accum), s1.lr,
                           s1.warmup_ratio, s1.max_steps, s1.session_limit_hours, False, False,
                           s1.split, n_train)
    if stage == "train-2":
        return SegmentPlan(stage, 2, s2.epochs, Shape(r2.micro_batch, r2.grad_accum), r2.lr,
                           r2.warmup_ratio, s2.max_steps, s2.session_limit_hours, True, True,
                           s2.split, n_train)
    if stage != "control":
        raise ValueError(f"unknown training stage {stage!r}; expected one of {STAGES}")
    c = t.control
    if c.recipe == "segment1":
        shape, lr, warmup = Shape(s1.micro_batch, s1.grad_accum), s1.lr, s1.warmup_ratio
    else:
        shape, lr, warmup = Shape(r2.micro_batch, r2.grad_accum), r2.lr, r2.warmup_ratio
    steps = c.max_steps or control_steps(cfg, shape, n_train)
    return SegmentPlan("control", 0, s1.epochs + s2.epochs, shape, lr, warmup, steps,
                       c.session_limit_hours, False, True, c.split, n_train)


def optimizer_steps(plan: SegmentPlan, n_train: int) -> int:
    """Optimizer steps the run makes: its cap, else what the paper's Trainer (transformers
    4.51) counted: per epoch, micro-batches (rounded up) floor-divided by grad-accum, at the
    WRITTEN shape, times the epochs: 2,274 at 2 x 4 -> 284, at 4 x 8 -> 2 x 71 = 142.

    That Trainer still ran an epoch's leftover micro-batches as one smaller optimizer step,
    counted against this total, and stopped when the total was reached: segment 2 made 72
    steps in epoch 1 (the 72nd on the 2 conversations left over) and 70 in epoch 2; segment 1
    stopped at 284 before its leftover step. transformers 5 rounds the per-epoch count up
    instead (285, 144); given this total as max_steps it runs the same steps as 4.51 did. The
    written shape fixes the count, so `split = "auto"` changes no step."""
    if plan.max_steps:
        return plan.max_steps
    per_epoch = max(1, math.ceil(n_train / plan.shape.micro_batch) // plan.shape.grad_accum)
    return plan.epochs * per_epoch


def control_steps(cfg: Config, shape: Shape, n_train: int) -> int:
    """0 (= run the epochs) when neither segment is capped; else the optimizer steps at
    `shape` that see as many sequences as segment 1 + segment 2 together."""
    s1, s2 = cfg.train.segment1, cfg.train.segment2
    if not (s1.max_steps or s2.max_steps):
        return 0
    r2 = s2.resolved()
    seen = 0
    for max_steps, epochs, eff in ((s1.max_steps, s1.epochs, s1.micro_batch * s1.grad_accum),
                                   (s2.max_steps, s2.epochs, r2.micro_batch * r2.grad_accum)):
        seen += max_steps * eff if max_steps else epochs * n_train
    return max(1, math.ceil(seen / shape.effective))


def halve(shape: Shape) -> Shape | None:
    """The next shape down after an out-of-memory first step: half the micro-batch, the same
    effective batch. None when the micro-batch is already 1."""
    if shape.micro_batch <= 1:
        return None
    if shape.micro_batch % 2:  # an odd micro-batch cannot halve exactly: go to 1
        return Shape(1, shape.effective)
    return Shape(shape.micro_batch // 2, shape.grad_accum * 2)


def warmup_steps(total_steps: int, ratio: float) -> int:
    """transformers' rule for a ratio: ceil(total x ratio) (284 x 0.03 -> 9, the paper's 9)."""
    return math.ceil(total_steps * ratio)


# ---- session limit ---------------------------------------------------------------------------
def project(elapsed_s: float, steps_done: int, steps_total: int, setup_s: float = 0.0) -> float:
    """Projected wall-clock of the whole session: setup + the measured time per step so far
    times the steps in the segment."""
    per_step = (elapsed_s - setup_s) / max(steps_done, 1)
    return setup_s + per_step * steps_total


def should_stop(now_s: float, per_step_s: float, limit_s: float, save_margin_s: float) -> bool:
    """Stop before the session ends: the next step plus saving must still fit."""
    return limit_s > 0 and now_s + per_step_s + save_margin_s > limit_s


# ---- figures -----------------------------------------------------------------------------------
def summarize(rows: list[StepRow]) -> LossFigures:
    """Loss figures of a steps.jsonl: start, end, min and the step of the min."""
    losses = [(r["step"], r["loss"]) for r in rows if r.get("loss") is not None]
    if not losses:
        return {"start_loss": None, "end_loss": None, "min_loss": None, "min_loss_step": None}
    step_min, loss_min = min(losses, key=lambda x: x[1])
    return {
        "start_loss": losses[0][1],
        "end_loss": losses[-1][1],
        "min_loss": loss_min,
        "min_loss_step": step_min,
    }


def curve(rows: list[StepRow], step_offset: int = 0) -> list[list[float]]:
    """[[global step, loss], ...] with steps shifted by `step_offset` (segment 2 after 1)."""
    return [[r["step"] + step_offset, r["loss"]] for r in rows if r.get("loss") is not None]


def compare(seg1: dict, seg2: dict, control: dict, rows1: list[StepRow], rows2: list[StepRow],
            rows_c: list[StepRow]) -> Comparison:
    """control/comparison.json: the handoff path (segment 1 then 2) against the control run.

    Loss curves are on one axis of sequences seen, since the two paths use different effective
    batches; the headline is the held-out loss of the final adapters (handoff minus control:
    positive = the handoff cost something)."""
    eff1, eff2 = seg1["shape"]["effective"], seg2["shape"]["effective"]
    eff_c = control["shape"]["effective"]
    steps1 = seg1["optimizer_steps"]
    handoff_curve = [[s * eff1, loss] for s, loss in curve(rows1)]
    handoff_curve += [[steps1 * eff1 + s * eff2, loss] for s, loss in curve(rows2)]
    h2, hc = (seg2.get("heldout") or {}).get("loss"), (control.get("heldout") or {}).get("loss")
    return {
        "control_recipe": control.get("recipe"),
        "sequences_seen": {
            "handoff": steps1 * eff1 + seg2["optimizer_steps"] * eff2,
            "control": control["optimizer_steps"] * eff_c,
        },
        "optimizer_steps": {"segment1": steps1, "segment2": seg2["optimizer_steps"],
                            "control": control["optimizer_steps"]},
        "final_train_loss": {"handoff": seg2.get("end_loss"), "control": control.get("end_loss")},
        "heldout_loss": {"handoff": h2, "control": hc,
                         "delta": None if h2 is None or hc is None else h2 - hc},
        "segment2_start_vs_segment1_end": {"segment1_end": seg1.get("end_loss"),
                                           "segment2_start": seg2.get("start_loss")},
        "curves": {"x": "sequences seen", "handoff": handoff_curve,
                   "control": [[s * eff_c, loss] for s, loss in curve(rows_c)]},
    }
