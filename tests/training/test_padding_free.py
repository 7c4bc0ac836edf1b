"""train.padding_free: a packed micro-batch gives each sequence the loss and the gradient it
gets alone, on the CPU tier's attention (sdpa, and eager), through TRL's own padding-free
collator, called as TRL's SFTTrainer.compute_loss calls the model (use_cache=False). Two ways
of hiding the sequence boundaries fail the same comparison, so the test can see attention
across sequences: an all-ones attention mask, and a KV cache (transformers looks for packed
sequences only without either; with the model's default use_cache=True, measured: the second
sequence's logits 0.40 off). Then the setting's plumbing: the default, the SFTConfig fields,
and the refusals. The whole trainer path is compared in test_split_equality.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor_repro.config import load_config
from advisor_repro.errors import ConfigError
from advisor_repro.training import padding_free

pytestmark = pytest.mark.usefixtures("one_thread")
LENGTHS = (7, 12, 5)  # three sequences of different lengths in one micro-batch
LOSS_TOL = 1e-5  # fp32, summed cross-entropy of one sequence
GRAD_TOL = 1e-5  # relative, over every parameter of the model


def tiny_model(attn: str):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64)
    return LlamaForCausalLM._from_config(config, attn_implementation=attn).float()


def sequences() -> list[list[int]]:
    import torch

    g = torch.Generator().manual_seed(1)
    return [torch.randint(3, 96, (n,), generator=g).tolist() for n in LENGTHS]


def token_losses(model, input_ids, labels, **kw):
    """Per-target cross-entropy (the model's shift: logits at t predict the label at t + 1)."""
    import torch

    kw.setdefault("use_cache", False)  # as TRL's SFTTrainer.compute_loss sets it
    logits = model(input_ids=input_ids, **kw).logits[0, :-1]
    target = labels[0, 1:]
    return torch.nn.functional.cross_entropy(logits, target, ignore_index=-100,
                                             reduction="none"), target


def flat_grad(model, loss):
    import torch

    grads = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True,
                                allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                      for g, p in zip(grads, model.parameters(), strict=True)])


def per_sequence(model, packed: bool, hide: str = ""):
    """[(loss sum, gradient)] of each sequence: from one packed row, or each one alone."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    seqs = sequences()
    if not packed:
        out = []
        for s in seqs:
            x = torch.tensor([s])
            losses, _ = token_losses(model, x, x)
            out.append((losses.sum(), flat_grad(model, losses.sum())))
        return out
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(
        [{"input_ids": s} for s in seqs])
    assert "attention_mask" not in batch and batch["input_ids"].shape == (1, sum(LENGTHS))
    assert batch["position_ids"][0].tolist() == [i for n in LENGTHS for i in range(n)]
    kw = {"position_ids": batch["position_ids"]}
    if hide == "mask":
        kw["attention_mask"] = torch.ones_like(batch["input_ids"])
    elif hide == "cache":
        kw["use_cache"] = True
    losses, target = token_losses(model, batch["input_ids"], batch["labels"], **kw)
    # each sequence's first label is masked: no token is trained to predict the next sequence
    assert int((target != -100).sum()) == sum(n - 1 for n in LENGTHS)
    out, start = [], 0
    for n in LENGTHS:  # targets start + 1 .. start + n - 1 belong to this sequence
        seg = losses[start : start + n - 1]
        out.append((seg.sum(), flat_grad(model, seg.sum())))
        start += n
    return out


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_a_packed_micro_batch_gives_each_sequence_its_own_loss_and_gradient(attn):
    model = tiny_model(attn)
    alone, packed = per_sequence(model, False), per_sequence(model, True)
    for (la, ga), (lp, gp) in zip(alone, packed, strict=True):
        assert float(lp) == pytest.approx(float(la), abs=LOSS_TOL)
        assert float((gp - ga).norm() / ga.norm()) < GRAD_TOL


@pytest.mark.parametrize("hide", ["mask", "cache"])
def test_hiding_the_boundaries_lets_tokens_attend_across_and_the_test_sees_it(hide):
    model = tiny_model("sdpa")
    alone = per_sequence(model, False)
    mixed = per_sequence(model, True, hide=hide)
    # the first sequence sees nothing before it; the later ones attend to their predecessors
    assert float(mixed[0][0]) == pytest.approx(float(alone[0][0]), abs=LOSS_TOL)
    for (la, _), (lm, _) in zip(alone[1:], mixed[1:], strict=True):
        assert abs(float(lm) - float(la)) > 1000 * LOSS_TOL


def test_padding_free_is_off_by_default_and_in_the_paper_profile():
    for profile in ("paper", "smoke"):
        assert load_config(profile).train.padding_free is False
    assert padding_free.sft_fields(load_config("paper").train) == {
        "padding_free": False, "max_length": 2048, "include_num_input_tokens_seen": "non_padding"}
    on = load_config("paper", ["train.padding_free=true"]).train
    # TRL refuses max_length in padding-free mode without packing: lengths are checked instead;
    # no padding at all: every id is a real token (the pad-id count would miss each EOS)
    assert padding_free.sft_fields(on) == {"padding_free": True, "max_length": None,
                                           "include_num_input_tokens_seen": "all"}
    padded_up = load_config("paper", ["train.padding_free=true", "train.pad_to_multiple_of=64"])
    assert padding_free.sft_fields(padded_up.train)["include_num_input_tokens_seen"] == \
        "non_padding"


def test_padding_free_with_packing_is_refused():
    with pytest.raises(ConfigError, match=r"train\.padding_free and train\.packing are both on"):
        load_config("smoke", ["train.padding_free=true", "train.packing=true"])


def test_a_conversation_the_padded_run_would_cut_is_refused_with_the_fix():
    padding_free.check_lengths([[1] * 24, [1] * 7], 24)  # at the limit: kept whole by both
    with pytest.raises(ConfigError) as err:
        padding_free.check_lengths([[1] * 30, [1] * 7, [1] * 25], 24)
    text = str(err.value)
    assert "2 conversation(s) are longer than train.max_seq_length = 24 tokens" in text
    assert "the longest: 30" in text and "train.max_seq_length=30" in err.value.fix
    assert "train.padding_free=false" in err.value.fix


# ---- the GPU tier: the trainer's own path under each backend --------------------------------
GPU_LOSS_TOL = 2e-3  # fp16 compute over an NF4 base: the mean loss of one sequence, absolute
GPU_GRAD_TOL = 2e-2  # relative L2 distance of the LoRA gradient, packed vs alone


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["unsloth", "hf"])
def test_a_packed_micro_batch_keeps_its_sequences_apart_on_the_gpu(backend, tmp_path):
    """padding_free_gpu.py in a fresh process: the collator the trainer built (under Unsloth it
    adds packed_seq_lengths, which Unsloth's attention reads), three sequences in one row, each
    one's loss and LoRA gradient packed and alone; the control hides the boundaries (plain
    causal attention over the row) and must move the later sequences far more."""
    import os
    import subprocess
    import sys

    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from advisor_repro.models.hub import cache_root
    from advisor_repro.models.rehearsal import random_base_dir

    base = random_base_dir(cache_root(), "tiny", create=True)
    out = tmp_path / "separation.json"
    probe = Path(__file__).with_name("padding_free_gpu.py")
    done = subprocess.run([sys.executable, str(probe), backend, str(base), str(out)],
                          env={**os.environ, "PYTHONHASHSEED": "0"}, timeout=600,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    if backend == "unsloth":  # Unsloth's attention reads the boundaries from this key alone
        assert "packed_seq_lengths" in report["batch_keys"], report["batch_keys"]
    first, *later = report["sequences"]
    for seq in report["sequences"]:
        assert seq["grad_norm"] > 0
        assert seq["packed_loss_diff"] < GPU_LOSS_TOL, report
        assert seq["packed_grad_rel"] < GPU_GRAD_TOL, report
    # the control: the first sequence sees nothing before it either way; the later ones do
    assert first["crossed_grad_rel"] < GPU_GRAD_TOL, report
    for seq in later:
        assert seq["crossed_grad_rel"] > 5 * GPU_GRAD_TOL, report
