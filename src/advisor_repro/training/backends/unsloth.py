"""The `unsloth` training backend: the paper's path (Unsloth's FastLanguageModel).

Segment 1 and the control run: FastLanguageModel.from_pretrained(the 4-bit base) then
get_peft_model with the paper's LoRA settings, random_state 3407 and gradient checkpointing,
as the released notebooks call it (use_gradient_checkpointing=True; `train.unsloth_checkpointing
= "unsloth"` picks Unsloth's offloaded variant instead). Segment 2: the same base,
then the handoff bundle through PeftModel.from_pretrained(..., is_trainable=True) and
Unsloth's patch_peft_model, which is what Unsloth's own loader does with an adapter folder, so
the fused LoRA kernels and checkpointing are the same as in segment 1.

Unsloth refuses to import without a GPU, so `prepare()` checks for one first and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advisor_repro.errors import PreflightError
from advisor_repro.training.backends import LoadSpec, lora_kwargs, torch_dtype

NAME = "unsloth"
CPU_FIX = "use the hf backend on this machine: --backend hf (or --set model.backend='hf')"


def prepare() -> None:
    """Import Unsloth before transformers/TRL/PEFT, as it requires (it patches them)."""
    import os

    import torch

    if not torch.cuda.is_available():
        raise PreflightError("the unsloth backend needs a CUDA GPU and none is visible", CPU_FIX)
    os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")  # no network calls from training
    try:
        import unsloth  # noqa: F401
    except ImportError as exc:
        raise PreflightError(
            f"the unsloth backend needs the unsloth package ({exc})",
            "pip install -e '.[gpu]' (the GPU image has it), or " + CPU_FIX,
        ) from exc


def load(spec: LoadSpec) -> tuple[Any, Any]:
    if spec.device != "cuda":
        raise PreflightError(f"the unsloth backend cannot train on {spec.device}", CPU_FIX)
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=str(spec.base_dir),
        max_seq_length=spec.max_seq_length,
        dtype=torch_dtype(spec.dtype),
        load_in_4bit=True,
        use_exact_model_name=True,  # a local folder: no remapping to another hub repo
        local_files_only=True,
    )
    tokenizer.padding_side = "right"
    # True = the notebooks' setting; "unsloth" = Unsloth's offloaded variant (less VRAM)
    gc: bool | str = bool(spec.gradient_checkpointing)
    if gc and spec.offload_checkpointing:
        gc = "unsloth"
    if spec.adapter_dir is None:
        model = FastLanguageModel.get_peft_model(
            model,
            **lora_kwargs(spec.lora),
            use_gradient_checkpointing=gc,
            random_state=spec.lora.random_state,
            use_rslora=False,
            loftq_config=None,
        )
    else:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, Path(spec.adapter_dir), is_trainable=True)
        model = FastLanguageModel.patch_peft_model(model, use_gradient_checkpointing=gc)
    return model, tokenizer


def trainer_kwargs(spec: LoadSpec) -> dict[str, Any]:
    """Unsloth set up checkpointing in get_peft_model; the notebooks' TrainingArguments left
    the Trainer's own switch off, and so do we."""
    return {"gradient_checkpointing": False}
