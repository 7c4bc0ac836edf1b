"""How far a training benchmark is from the hardware: model and hardware FLOPs utilisation
against the GPU's dense FP16/BF16 peak. Pure: no torch.

QLoRA training, per real (non-padding) token, through a model of N dense parameters:
  forward                        2N FLOP
  backward through activations   2N (every matmul's input gradient, frozen weights or not)
  weight gradients               none for the frozen NF4 base; LoRA's are ~0.6% of N at r 16
                                 on the 7 projections, left out as the definition leaves them
  gradient checkpointing         one more forward of each layer (2N), recomputed in backward
MFU = 4 N tokens/s / peak counts the work the model needs; HFU = 6 N tokens/s / peak (with
checkpointing; 4 N without) counts what the GPU did. Attention's sequence-squared FLOPs are not
counted (params-only, as PaLM's appendix B counts the 6N part), so both are slight
underestimates at long sequences. N counts the weights the NF4 blocks stand for, not their
packed storage (what `numel()` of a bitsandbytes Params4bit reports is half of it).

The peaks are gpus.toml's (NVIDIA datasheet figures, dense: the datasheets' "with sparsity"
numbers halved), plus the variants whose torch name differs from the listed part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

MODEL_FLOP_PER_PARAM = 4  # forward + backward through activations
RECOMPUTE_FLOP_PER_PARAM = 2  # the forward that gradient checkpointing runs again

# (pattern on the torch device name, label, dense FP16/BF16 TFLOP/s, note), tried before the
# table in gpus.toml, whose keys would also match these names.
VARIANTS: tuple[tuple[str, str, float, str], ...] = (
    # NVIDIA H100 datasheet: H100 PCIe 1,513 TFLOPS FP16 with sparsity -> 756 dense
    (r"\bH100\b.*\bPCIE\b", "H100 PCIe", 756.0, ""),
    # NVIDIA H100 datasheet: H100 NVL 1,671 TFLOPS FP16 with sparsity -> 835.5 dense
    (r"\bH100\b.*\bNVL\b", "H100 NVL", 835.5, ""),
    # NVIDIA V100 datasheet: V100 PCIe 112 TFLOPS tensor performance
    (r"\bV100\b.*\bPCIE\b", "V100 PCIe", 112.0, ""),
)
NOTES = {
    "P100": "no tensor cores: 18.7 TFLOP/s is its FP16 rate (2x FP32) on the CUDA cores",
    "T4": "FP16 only (no BF16); a 70 W card that sustains less than its peak clock",
}


@dataclass(frozen=True)
class Peak:
    gpu: str  # the table's key, or a variant's label
    tflops: float  # dense FP16/BF16 matrix throughput, TFLOP/s
    note: str = ""


def peak_for(device_name: str) -> Peak | None:
    """The dense FP16/BF16 peak of the GPU torch names `device_name`; None when it is not in
    the table (a CPU, a GPU not listed): no utilisation is then claimed."""
    from advisor_repro.hardware.projection import gpus

    name = device_name.upper()
    for pattern, label, tflops, note in VARIANTS:
        if re.search(pattern, name):
            return Peak(label, tflops, note)
    for key, gpu in gpus().items():
        if re.search(rf"\b{re.escape(key)}\b", name):
            return Peak(key, gpu.fp16_tflops, NOTES.get(key, ""))
    return None


def dense_params(config: Any) -> int:
    """Parameters a token passes through in a Llama/Mistral/Qwen2-type decoder, from its
    config (attributes or a dict): embeddings, attention, MLP, norms, the output head."""
    c = config if isinstance(config, dict) else (
        config.to_dict() if hasattr(config, "to_dict") else vars(config))
    h, layers, vocab = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    heads, kv = c["num_attention_heads"], c.get("num_key_value_heads") or c["num_attention_heads"]
    head_dim = c.get("head_dim") or h // heads
    attn = h * heads * head_dim * 2 + h * kv * head_dim * 2  # q and o, k and v
    if c.get("attention_bias") or c.get("model_type") == "qwen2":  # Qwen2: q, k, v biases
        attn += heads * head_dim + 2 * kv * head_dim
    mlp = 3 * h * c["intermediate_size"]  # gate, up, down
    per_layer = attn + mlp + 2 * h  # and two RMSNorm weights
    head = 0 if c.get("tie_word_embeddings") else vocab * h
    return vocab * h + layers * per_layer + h + head


def mfu(params: int, tokens_per_s: float, peak_tflops: float) -> float:
    """Model FLOPs utilisation of QLoRA training: 4 x params x real tokens/s over the peak."""
    return MODEL_FLOP_PER_PARAM * params * tokens_per_s / (peak_tflops * 1e12)


def hfu(params: int, tokens_per_s: float, peak_tflops: float,
        checkpointing: bool | float) -> float:
    """Hardware FLOPs utilisation: MFU plus the forward that checkpointing recomputes
    (`checkpointing`: on / off, or the share of the layers checkpointed)."""
    per = MODEL_FLOP_PER_PARAM + RECOMPUTE_FLOP_PER_PARAM * float(checkpointing)
    return per * params * tokens_per_s / (peak_tflops * 1e12)


class Utilisation(TypedDict):
    """The fragment a benchmark stores beside each tokens/s."""

    gpu: str
    peak_tflops: float
    params: int
    mfu: float
    hfu: float
    checkpointing: bool | float
    note: NotRequired[str]  # how the peak was chosen, where it needs saying


def utilisation(params: int | None, tokens_per_s: float | None, device_name: str,
                checkpointing: bool | float) -> Utilisation | None:
    """The record fragment a benchmark stores beside its tokens/s; None where there is no
    peak to measure against (the CPU, an unlisted GPU) or nothing was measured."""
    peak = peak_for(device_name or "")
    if peak is None or not params or not tokens_per_s:
        return None
    out = Utilisation(gpu=peak.gpu, peak_tflops=peak.tflops, params=params,
                      mfu=round(mfu(params, tokens_per_s, peak.tflops), 4),
                      hfu=round(hfu(params, tokens_per_s, peak.tflops, checkpointing), 4),
                      checkpointing=checkpointing)
    if peak.note:
        out["note"] = peak.note
    return out


def percent(x: float | None) -> str:
    """A utilisation as BENCHMARKS.md prints it."""
    return "-" if x is None else f"{100 * x:.1f}%"
