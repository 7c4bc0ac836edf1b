"""The `hf` training backend: transformers + bitsandbytes NF4 (double quant) + PEFT LoRA.

Runs on CPU and GPU (bitsandbytes >= 0.49 has CPU kernels for NF4 and for the 8-bit AdamW
state), so the CPU smoke replay walks the paper's code path: a 4-bit base, LoRA on the 7
projections, TRL's SFTTrainer, AdamW 8-bit. This is the standard QLoRA recipe
(prepare_model_for_kbit_training, then get_peft_model), and the benchmark's baseline (c).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advisor_repro.hardware.gpu import nf4_config
from advisor_repro.training.backends import LoadSpec, is_prequantized, lora_kwargs, torch_dtype

NAME = "hf"


def prepare() -> None:
    """Nothing must be imported ahead of transformers for this backend."""



def load_base(spec: LoadSpec) -> tuple[Any, Any]:
    """The base in 4-bit NF4 on spec.device, and its tokenizer (right padding)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()  # one "Loading weights" bar per shard is noise in the logs
    dtype = torch_dtype(spec.dtype)
    tokenizer = AutoTokenizer.from_pretrained(spec.base_dir)
    tokenizer.padding_side = "right"
    prequantized = is_prequantized(spec.base_dir)
    model = AutoModelForCausalLM.from_pretrained(
        spec.base_dir,
        dtype=dtype,
        device_map={"": 0 if spec.device == "cuda" else "cpu"},
        use_safetensors=True,  # never a pickle (.bin)
        # A pre-quantized base loads as stored; anything else is quantized while it loads.
        **({} if prequantized else {"quantization_config": nf4_config(dtype)}),
    )
    if prequantized:
        _set_compute_dtype(model, dtype)
    return model, tokenizer


def _set_compute_dtype(model: Any, dtype: Any) -> None:
    """A pre-quantized base records the compute dtype it was saved with (bf16 for Unsloth's);
    a T4 has no bf16, so the 4-bit layers compute in the run's dtype instead."""
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.compute_dtype = dtype


def load(spec: LoadSpec) -> tuple[Any, Any]:
    """NF4 base + LoRA: fresh (seeded with lora.random_state) or the handoff bundle's."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

    model, tokenizer = load_base(spec)
    model = prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=spec.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )
    if spec.adapter_dir is not None:
        model = PeftModel.from_pretrained(model, Path(spec.adapter_dir), is_trainable=True)
    else:
        torch.manual_seed(spec.lora.random_state)  # what Unsloth's random_state does
        config = LoraConfig(task_type="CAUSAL_LM", **lora_kwargs(spec.lora))
        model = get_peft_model(model, config)
    return model, tokenizer


def trainer_kwargs(spec: LoadSpec) -> dict[str, Any]:
    return {
        "gradient_checkpointing": spec.gradient_checkpointing,
        "gradient_checkpointing_kwargs": {"use_reentrant": False},
    }
