"""The one home of what every wing that touches a GPU shares: the byte unit, the per-process
VRAM cap and the NF4 quantization config.

Memory is counted in GiB (2**30 bytes) throughout, as torch and Unsloth report it; the paper's
GB figures are converted where they are quoted (report/verify_table.py). Every process that
loads a model on a GPU larger than the budget (`hardware.vram_budget_gib`, the T4's usable
14.74 GiB) caps itself here, so that a run on an H100 proves what a 16 GB card would hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GIB = 2**30  # bytes in a GiB


@dataclass(frozen=True)
class VramCap:
    """What `cap_vram` found and did: the device's memory, and the cap this process now runs
    under (None when the device is no larger than the budget, or there is no GPU)."""

    total_gib: float | None
    cap_gib: float | None

    def train_json(self) -> dict[str, float | None]:
        """As a segment's summary.json records it (`vram`)."""
        return {"device_total_gib": self.total_gib, "cap_gib": self.cap_gib}

    def generate_json(self) -> dict[str, float | None]:
        """As generation records it: the memory this process may use, capped or not."""
        if self.total_gib is None:
            return {}
        return {"total_gib": self.total_gib,
                "cap_gib": self.cap_gib if self.cap_gib is not None else self.total_gib}


def cap_vram(device: str, budget_gib: float) -> VramCap:
    """Cap this process at `budget_gib` on a CUDA device larger than that; a no-op elsewhere."""
    if device != "cuda" or not budget_gib:
        return VramCap(None, None)
    import torch

    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    if total <= budget_gib * GIB:
        return VramCap(round(total / GIB, 3), None)
    torch.cuda.set_per_process_memory_fraction(budget_gib * GIB / total)
    return VramCap(round(total / GIB, 3), budget_gib)


def nf4_config(compute_dtype: Any, double_quant: bool = True) -> Any:
    """The paper's 4-bit base (QLoRA): NF4 weights, double quantization, `compute_dtype`
    matmuls; the same for the trainer's hf backend, generation and the local judge."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=compute_dtype,
    )
