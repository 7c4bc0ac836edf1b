"""Training backends: one interface, two implementations, chosen by `model.backend`.

A backend does only what differs between the libraries: it turns a `LoadSpec` into
(model, tokenizer), the base model in 4-bit NF4 with LoRA adapters ready to train (fresh ones
for segment 1 and the control run, the handoff bundle's for segment 2), and it names the
SFTConfig fields it needs changed. Everything after loading (TRL's SFTTrainer, AdamW 8-bit,
the linear schedule, logging, checkpoints) is shared, in `advisor_repro.training.trainer`.

  hf       transformers + bitsandbytes NF4 (double quant) + PEFT; CPU or GPU
  unsloth  Unsloth's FastLanguageModel, the paper's path; CUDA only

Each backend is a module with `NAME`, `prepare()`, `load(spec)` and `trainer_kwargs(spec)`.
`prepare()` runs first in the training process: Unsloth must be imported before transformers,
TRL and PEFT, so nothing heavy is imported at module level anywhere on this path.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from advisor_repro.config import Lora
from advisor_repro.errors import ConfigError

NAMES = ("hf", "unsloth")
TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


@dataclass(frozen=True)
class LoadSpec:
    base_dir: Path  # local folder of the base model (hub snapshot, smoke or random base)
    device: str  # "cuda" or "cpu"
    dtype: str  # compute dtype: "bf16", "fp16" or "fp32"
    max_seq_length: int  # tokens
    lora: Lora
    gradient_checkpointing: bool
    adapter_dir: Path | None = None  # segment 2: the verified handoff bundle, loaded trainable
    offload_checkpointing: bool = False  # unsloth only: checkpointed activations in CPU RAM


class Backend(Protocol):
    NAME: str

    def prepare(self) -> None: ...

    def load(self, spec: LoadSpec) -> tuple[Any, Any]: ...

    def trainer_kwargs(self, spec: LoadSpec) -> dict[str, Any]: ...


def get_backend(name: str) -> Backend:
    if name not in NAMES:
        raise ConfigError(f"unknown training backend {name!r}", f"use one of: {', '.join(NAMES)}")
    return importlib.import_module(f"advisor_repro.training.backends.{name}")  # type: ignore[return-value]


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, TORCH_DTYPES[name])


def is_prequantized(base_dir: Path) -> bool:
    """A base saved already in 4-bit (the paper's unsloth/...-bnb-4bit) carries its
    quantization_config in config.json; an fp16/fp32 base is quantized while it loads."""
    import json

    config = json.loads((Path(base_dir) / "config.json").read_text(encoding="utf-8"))
    return "quantization_config" in config


def lora_kwargs(lora: Lora) -> dict[str, Any]:
    """The paper's LoRA settings, in the names PEFT and Unsloth share."""
    return {
        "r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "bias": lora.bias,
        "target_modules": list(lora.target_modules),
    }


def count_trainable(model: Any) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
