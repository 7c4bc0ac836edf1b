"""`train.checkpoint_layers`: which decoder layers gradient checkpointing recomputes.

Gradient checkpointing is a memory trade, not math: a checkpointed layer keeps only its input
and runs its forward again during the backward; a layer left out keeps its activations. The
losses and gradients are the same either way (tests/training/test_checkpointing.py on the CPU,
the gpu test under Unsloth). "all" checkpoints every decoder layer, as the released notebooks
(use_gradient_checkpointing=True); "auto" leaves out as many layers as the memory model says
fit the VRAM budget at the micro-batch in force (`decide`, from microbatch's calibration),
and each layer left out saves its recomputed forward: a third of the matmul work of a step when
none is recomputed (HFU counts 4 + 2 x the checkpointed share FLOP per parameter and token).

How: transformers 5's decoder layers (GradientCheckpointingLayer) each read their own
`gradient_checkpointing` flag on every call, and Unsloth's Mistral/Llama forward hands
checkpointing to those layers. The backend loads with checkpointing armed on every layer; then
`apply` leaves some out: under Unsloth through its own mechanism (get_peft_model's
checkpoint_skip_layers, `skip_checkpointing`), under hf by the flags, set again at the start of
training and of every step (the Trainer's gradient_checkpointing_enable sets them all on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from advisor_repro.config import Train
from advisor_repro.training import microbatch

CPU_REASON = "no VRAM to measure on the CPU: every layer checkpointed"


class Layers(TypedDict):
    """The record of which layers a run checkpoints (summary.json's checkpointing)."""

    mode: str  # "off", "all", "auto" or "explicit"
    layers: int
    checkpointed: int
    share: float
    predicted_peak_gib: float | None
    reason: str
    in_force: NotRequired[list[int] | None]  # the trainer's record: layers seen un-checkpointed


@dataclass(frozen=True)
class Decision:
    layers: int  # decoder layers of the model
    checkpointed: int  # of them, how many recompute their forward
    predicted_peak_gib: float | None  # the memory model's peak with that many (x SAFETY)
    reason: str
    mode: str = "auto"  # "off", "all", "auto" or "explicit" (the benchmark's :gcN)

    @property
    def share(self) -> float:
        return self.checkpointed / self.layers if self.layers else 1.0

    def to_dict(self) -> Layers:
        return {"mode": self.mode, "layers": self.layers, "checkpointed": self.checkpointed,
                "share": round(self.share, 4), "predicted_peak_gib": self.predicted_peak_gib,
                "reason": self.reason}


def worst_tokens(lengths: list[int], micro_batch: int, longest: int, padding_free: bool) -> int:
    """Tokens of the largest micro-batch the data can make: every row padded to the longest
    (`longest`, already rounded up as the run pads), or, packed without padding, the
    micro-batch's longest sequences end to end."""
    if padding_free:
        return sum(sorted(lengths, reverse=True)[:micro_batch])
    return micro_batch * longest


def decide(cal: microbatch.Calibration | None, layers: int, tokens: int, budget_gib: float,
           device: str) -> Decision:
    """How many of `layers` to checkpoint at a micro-batch of `tokens` tokens: the fewest whose
    predicted peak stays HEADROOM under the budget (all of them without a calibration of the
    activations a layer keeps when it is not checkpointed)."""
    if device != "cuda":
        return Decision(layers, layers, None, CPU_REASON)
    if cal is None or not cal.get("gib_per_layer_token"):
        return Decision(layers, layers, None,
                        "no calibration of an un-checkpointed layer's activations for this "
                        "backend and model shape: every layer checkpointed")
    room = (budget_gib - microbatch.HEADROOM_GIB) / microbatch.SAFETY
    room -= cal["base_gib"] + cal["gib_per_token"] * tokens
    per_layer = cal["gib_per_layer_token"] * tokens
    free = max(0, min(layers, math.floor(room / per_layer))) if per_layer > 0 else layers
    checkpointed = layers - free
    peak = round((cal["base_gib"] + cal["gib_per_token"] * tokens + free * per_layer)
                 * microbatch.SAFETY, 3)
    reason = (f"{free} of {layers} layers keep their activations ({per_layer:.3f} GiB each at "
              f"{tokens:,} tokens, the largest micro-batch), predicted to peak at {peak:.2f} "
              f"GiB within {budget_gib:g} GiB less {microbatch.HEADROOM_GIB:g} GiB headroom; "
              f"{checkpointed} recompute their forward")
    return Decision(layers, checkpointed, peak, reason)


def choose(train: Train, cal: microbatch.Calibration | None, layers: int, tokens: int,
           budget_gib: float, device: str) -> Layers:
    """The record of which layers a run checkpoints (`decide` under "auto")."""
    if not train.gradient_checkpointing:
        return Decision(layers, 0, None, "train.gradient_checkpointing = false", "off").to_dict()
    if train.checkpoint_layers == "all":
        return Decision(layers, layers, None, "train.checkpoint_layers = 'all': every layer, "
                        "as the notebooks", "all").to_dict()
    return decide(cal, layers, tokens, budget_gib, device).to_dict()


def for_model(model: Any, train: Train, backend: str, tokens: int, budget_gib: float,
              device: str) -> Layers:
    """`choose` for this model (its decoder layers, the calibration of its backend and shape)
    at a largest micro-batch of `tokens` tokens."""
    cal = microbatch.calibration(backend, model.config, train.gradient_checkpointing)
    return choose(train, cal, len(decoder_layers(model)), tokens, budget_gib, device)


# ---- on the model ------------------------------------------------------------------------------
def decoder_layers(model: Any) -> list[Any]:
    """The model's checkpointable decoder layers, in order."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


def apply(model: Any, layers: list[Any], checkpointed: int, backend: str) -> None:
    """Checkpoint `checkpointed` of the layers, not the others. Under Unsloth through its own
    get_peft_model(checkpoint_skip_layers=K) mechanism (`skip_checkpointing`: K evenly spaced
    layers marked to read their flag as off, whatever for_training or the trainer writes to it),
    after clearing the marks of an earlier call; under hf by the layers' own flags (the last
    `checkpointed` on), which the Trainer's gradient_checkpointing_enable sets back: `Keep`
    applies them again at the start of training and of every step."""
    skip = len(layers) - checkpointed
    if backend == "unsloth":
        from unsloth.models._utils import skip_checkpointing

        for layer in layers:  # the marks of an earlier decision (the benchmark's next split)
            layer.__dict__.pop("_unsloth_skip_checkpoint", None)
        skip_checkpointing(model, skip)
        return
    for i, layer in enumerate(layers):
        if getattr(layer, "_gradient_checkpointing_func", None) is not None:  # armed
            layer.gradient_checkpointing = i >= skip


def count(layers: list[Any]) -> int:
    """Layers that would recompute their forward in a training step now."""
    return sum(bool(getattr(layer, "gradient_checkpointing", False)) for layer in layers)


def keeper(model: Any, checkpointed: int, backend: str) -> Any:
    """A Trainer callback holding the model at `checkpointed` checkpointed layers through
    training; it records the count in force at each step's end (`seen`). Built here:
    transformers may be imported only after Unsloth."""
    from transformers import TrainerCallback

    layers = decoder_layers(model)

    class Keep(TrainerCallback):
        def __init__(self) -> None:
            self.layers, self.checkpointed, self.seen = layers, checkpointed, set()
            apply(model, layers, checkpointed, backend)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if backend != "unsloth":
                apply(model, self.layers, self.checkpointed, backend)

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if backend != "unsloth":
                apply(model, self.layers, self.checkpointed, backend)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.seen.add(count(self.layers))

        def restore(self) -> None:
            """Every layer checkpointed again (the benchmark reuses the model)."""
            apply(model, self.layers, len(self.layers), backend)

    return Keep()
