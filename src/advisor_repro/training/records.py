"""What a training run holds and writes: `SegmentRun` (a run's loaded state, which the trainer's
functions take instead of long argument lists), summary.json (`TrainSummary`) and the records
it is built from.

`trainer.fit` returns a `FitResult`; `trainer.build_summary` turns it and the run's setup facts
into the `TrainSummary` that the training stages, the handoff and the control read back through
the same class (`TrainSummary.from_json`). `to_json` gives summary.json's keys in their order.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypedDict

from advisor_repro.config import Train
from advisor_repro.files import read_json
from advisor_repro.training.backends import LoadSpec
from advisor_repro.training.checkpointing import Layers
from advisor_repro.training.handoff import LoraSettings
from advisor_repro.training.microbatch import Choice
from advisor_repro.training.segments import PlanRecord, SegmentPlan, Shape, ShapeRecord, StepRow

# A micro-batch halved after an out-of-memory first step (same effective batch); "from" is a
# keyword, hence the functional form.
ShapeChange = TypedDict("ShapeChange", {"from": list[int], "to": list[int], "reason": str})


class Padding(TypedDict):
    longest_tokens: int
    mean_tokens: float
    step_order: str
    padded_share: dict[str, float]  # by candidate micro-batch
    pad_to_multiple_of: int
    padding_free: bool


class SessionFacts(TypedDict):
    limit_hours: float | None
    action: str
    projected_hours: float | None
    stopped_early: bool
    warning: str | None


class Heldout(TypedDict):
    loss: float  # token-weighted mean cross-entropy
    tokens: int
    examples: int


class FromBundle(TypedDict):
    """Segment 2's start: the verified handoff bundle."""

    bundle: str
    handoff_json_sha256: str
    segment1_optimizer_steps: int
    segment1_epochs_done: float
    segment1_last_loss: float | None


class FreshLora(TypedDict):
    lora: str  # "fresh"
    random_state: int


@dataclass(frozen=True)
class SegmentRun:
    """One training run's loaded state, from setup to cleanup (torchtune's recipe state)."""

    model: Any  # the 4-bit base with LoRA, as the backend loaded it
    tokenizer: Any
    plan: SegmentPlan
    train: Train  # cfg.train (the benchmarks pass a variant)
    spec: LoadSpec
    backend: Any  # a backend module (training/backends)
    out: Path  # the stage's folder: steps.jsonl, checkpoints/
    budget_gib: float = 0.0  # hardware.vram_budget_gib (the split and checkpointing choices)


@dataclass(frozen=True)
class SetupFacts:
    """What setup learned before training, for the summary."""

    trainable: int
    base_revision: str
    data_fingerprint: str
    vram: dict[str, float | None]  # VramCap.train_json()
    handoff: FromBundle | None  # segment 2: the verified bundle it starts from


@dataclass
class FitResult:
    """What `trainer.fit` hands to cleanup."""

    rows: list[StepRow]
    shape: Shape
    changes: list[ShapeChange]
    resumed_from: str | None  # the checkpoint folder's name
    choice: Choice
    padding: Padding
    terminated_at: int | None  # the optimizer step a SIGTERM stopped after
    checkpointing: Layers
    backend: str
    global_step: int
    epoch: float
    max_steps: int
    train_seconds: float
    warmup_steps: int
    memory_peak: dict[str, float]
    session: SessionFacts


@dataclass
class TrainSummary:
    """<stage>/summary.json of train-1, train-2 and control."""

    stage: str
    segment: int
    backend: str
    backend_requested: str
    base_model: str
    base_revision: str
    base_folder: str
    device: str
    dtype: str
    lora: LoraSettings
    lora_random_state: int
    trainable_params: int
    data_fingerprint: str
    plan: PlanRecord
    shape: ShapeRecord
    shape_changes: list[ShapeChange]
    # the split in force (the report's phase table reads these four keys)
    micro_batch: int
    grad_accum: int
    effective_batch: int
    micro_batch_choice: Choice
    padding: Padding
    checkpointing: Layers
    warmup_steps: int
    optimizer: str
    started_from: FromBundle | FreshLora
    resumed_from: str | None
    optimizer_steps: int
    max_steps: int
    epochs_done: float
    start_loss: float | None
    end_loss: float | None
    min_loss: float | None
    min_loss_step: int | None
    last_loss: float | None
    tokens: int
    train_seconds: float
    tokens_per_s: float | None
    process_seconds: float
    memory_peak: dict[str, float]
    vram: dict[str, float | None]  # VramCap.train_json()
    session: SessionFacts
    heldout: Heldout | None
    warnings: list[str]
    versions: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        """summary.json: every field, in order (nested records are already JSON)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainSummary:
        return cls(**d)

    @classmethod
    def read(cls, path: Path) -> TrainSummary:
        return cls.from_json(read_json(path))


@dataclass(frozen=True)
class SegmentInputs:
    """What one training run reads and where it writes, as the stage resolved them from its
    declared inputs: preflight's decision, the training (and held-out) text, the handoff
    bundle for segment 2."""

    stage: str  # train-1 | train-2 | control
    out: Path  # the stage's own folder
    decision: Path
    train_text: Path
    test_text: Path | None = None  # read where the plan computes a held-out loss
    bundle: Path | None = None  # segment 2's handoff bundle

    def argv(self) -> list[str]:
        args = ["--stage", self.stage, "--out", str(self.out), "--decision", str(self.decision),
                "--train-text", str(self.train_text)]
        if self.test_text:
            args += ["--test-text", str(self.test_text)]
        return args + (["--bundle", str(self.bundle)] if self.bundle else [])
